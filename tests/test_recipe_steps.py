"""The recipes' Python steps on small inputs: cleaning, averaging, hypotheses, scoring, data scripts."""
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sigma_plugin.recipe import average, clean, hyps, score_mt
from sigma_plugin.util import StepError

ROOT = Path(__file__).resolve().parents[1]


def test_clean_normalises_and_filters_train_only(tmp_path):
    (tmp_path / "train.en").write_text("ﬁne\u200b  text\t here\n\nword\nvery long one two three four five six\n")
    (tmp_path / "train.de").write_text("feiner text\nleer\nWort\nkurz\n")
    stats = clean.clean_split(tmp_path / "train", tmp_path / "out" / "train", "en", "de", True, 200, 3.0)
    assert stats == {"lines_in": 4, "lines_out": 2}
    assert (tmp_path / "out" / "train.en").read_text().splitlines() == ["fine text here", "word"]
    stats = clean.clean_split(tmp_path / "train", tmp_path / "out" / "valid", "en", "de", False, 200, 3.0)
    assert stats["lines_out"] == 4  # valid/test keep every line so scores stay comparable


def _ckpt(path, w, gamma, u, step):
    torch.save({"model": {"l.parametrizations.weight.original": w, "l.parametrizations.weight.0.gamma": gamma,
                          "l.parametrizations.weight.0.u": u, "l.bias": torch.zeros(2)},
                "extra_state": {"step": step}}, path)


def test_average_last_checkpoints_and_refresh_u(tmp_path):
    w1 = torch.tensor([[3.0, 0.0], [0.0, 1.0]])
    w2 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    for i, w in enumerate([w1 * 100, w1, w2], start=1):  # checkpoint_1_100 is not among the last 2
        _ckpt(tmp_path / f"checkpoint_1_{i * 100}.pt", w, torch.tensor(float(i)), torch.tensor([0.6, 0.8]), i)
    (tmp_path / "checkpoint_last.pt").write_bytes(b"")
    paths = average.last_checkpoints(tmp_path, 2)
    assert [p.name for p in paths] == ["checkpoint_1_200.pt", "checkpoint_1_300.pt"]
    state = average.average(paths)
    model = state["model"]
    torch.testing.assert_close(model["l.parametrizations.weight.original"], (w1 + w2) / 2)
    assert model["l.parametrizations.weight.0.gamma"].item() == pytest.approx(2.5)
    # u refreshed to the top right singular vector of the averaged weight (diag(2, 1) -> e1)
    torch.testing.assert_close(model["l.parametrizations.weight.0.u"].abs(), torch.tensor([1.0, 0.0]), atol=1e-4, rtol=0)
    assert state["extra_state"]["step"] == 2  # other fields from the first averaged checkpoint
    with pytest.raises(StepError, match="no checkpoint_E_U.pt"):
        average.last_checkpoints(_empty(tmp_path), 2)
    with pytest.raises(StepError, match="checkpoint folder not found"):
        average.last_checkpoints(tmp_path / "missing", 2)


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


def test_hyps_in_corpus_order_and_missing_ids(tmp_path):
    log = tmp_path / "gen.out"
    log.write_text("S-1\tb\nH-1\t-0.1\t▁b\nD-1\t-0.1\tb\nD-0\t-0.2\ta a\nD-2\t-0.3\t\n")
    assert hyps.extract(log) == {1: "b", 0: "a a", 2: ""}
    res = subprocess.run([sys.executable, "-m", "sigma_plugin.recipe.hyps", "--generate-log", str(log),
                          "--output", str(tmp_path / "h.txt"), "--expect", "4"], capture_output=True, text=True)
    assert res.returncode == 2 and "no hypothesis for 1 of 4 sentences" in res.stderr
    assert not (tmp_path / "h.txt").exists()


def test_hyps_keeps_the_best_of_an_nbest_list(tmp_path):
    """fairseq-generate --nbest N prints N hypotheses per sentence, best first: the best is scored."""
    log = tmp_path / "gen.out"
    log.write_text("H-0\t-0.1\t▁good\nD-0\t-0.1\tgood\nD-0\t-0.5\tworse\nD-0\t-0.9\tworst\n"
                   "D-1\t-0.7\tsecond\nD-1\t-0.2\tbest\n")
    assert hyps.extract(log) == {0: "good", 1: "best"}
    log.write_text("D-0\tnot-a-score\tx\n")
    with pytest.raises(StepError, match="gen.out:1: expected 'D-<id>"):
        hyps.extract(log)


def test_hyps_of_a_real_nbest_decode_equal_the_1best(tmp_path_factory):
    from _tiny_mt import tiny_run
    from _toy_mt import BIN, USER_DIR, run
    tiny = tiny_run(tmp_path_factory)
    outs = {}
    for nbest in (1, 3):
        out = tmp_path_factory.mktemp("nbest") / "gen.out"
        out.write_text(run([str(BIN / "fairseq-generate"), str(tiny.data), "--path", str(tiny.checkpoint), "--cpu",
                            "--user-dir", USER_DIR, "--gen-subset", "valid", "--beam", "4", "--nbest", str(nbest),
                            "--required-batch-size-multiple", "1"]).stdout)
        outs[nbest] = out
    text = outs[3].read_text()
    assert text.count("\nH-0\t") + text.startswith("H-0\t") == 3
    assert hyps.extract(outs[3], "H") == hyps.extract(outs[1], "H")


def test_score_mt_writes_signatures(tmp_path):
    (tmp_path / "hyp").write_text("the cat sat on the mat\nhello world\n")
    (tmp_path / "ref").write_text("the cat sat on the mat\nhello there world\n")
    res = subprocess.run([sys.executable, "-m", "sigma_plugin.recipe.score_mt", "--hyp", str(tmp_path / "hyp"),
                          "--ref", str(tmp_path / "ref"), "--output", str(tmp_path / "r.json"), "--name", "x"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    r = json.loads((tmp_path / "r.json").read_text())
    import sacrebleu
    assert r["bleu"] == pytest.approx(round(sacrebleu.corpus_bleu(["the cat sat on the mat", "hello world"],
                                                                 [["the cat sat on the mat", "hello there world"]]).score, 2))
    assert r["bleu_signature"].startswith("nrefs:1|case:mixed") and "nc:6" in r["chrf_signature"]
    assert "x: BLEU" in res.stdout and "x: chrF" in res.stdout
    (tmp_path / "hyp").write_text("one line\n")
    res = subprocess.run([sys.executable, "-m", "sigma_plugin.recipe.score_mt", "--hyp", str(tmp_path / "hyp"),
                          "--ref", str(tmp_path / "ref"), "--output", str(tmp_path / "r2.json")],
                         capture_output=True, text=True)
    assert res.returncode == 2 and "has 1 lines but" in res.stderr and not (tmp_path / "r2.json").exists()


def test_iwslt14_data_script_on_a_fake_release(tmp_path):
    """The text processing of egs/iwslt14_de_en/mt1/local/data.sh (download already done)."""
    release = tmp_path / "iwslt" / "de-en"
    release.mkdir(parents=True)
    for lang in ("de", "en"):
        lines = ["<url>http://x</url>", "<talkid>1</talkid>", "<title>T {}</title>".format(lang)]
        lines += [f"{lang} sentence {i}" for i in range(1, 47)]
        (release / f"train.tags.de-en.{lang}").write_text("\n".join(lines) + "\n")
        for s in ("IWSLT14.TED.dev2010", "IWSLT14.TEDX.dev2012", "IWSLT14.TED.tst2010", "IWSLT14.TED.tst2011",
                  "IWSLT14.TED.tst2012"):
            (release / f"{s}.de-en.{lang}.xml").write_text(
                f'<doc>\n<seg id="1"> {s} {lang} one </seg>\n<seg id="2">{s} it’s {lang}</seg>\n</doc>\n')
    (tmp_path / "iwslt" / ".done").touch()
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, IWSLT14_DIR=str(tmp_path / "iwslt"))
    res = subprocess.run([str(ROOT / "egs/iwslt14_de_en/mt1/local/data.sh"), str(out), "de", "en"],
                         env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    train = (out / "train.de").read_text().splitlines()
    valid = (out / "valid.de").read_text().splitlines()
    assert len(train) + len(valid) == 47 and len(valid) == 2 and "T de" in train  # title kept, tags gone
    assert not any("<" in l for l in train + valid)
    test = (out / "test.en").read_text().splitlines()
    assert len(test) == 10 and test[0] == "IWSLT14.TED.dev2010 en one" and test[1] == "IWSLT14.TED.dev2010 it's en"


def test_compare_table_from_recorded_logs(tmp_path):
    data = ROOT / "tests" / "data"
    res = subprocess.run([sys.executable, "-m", "sigma_plugin.recipe.compare", str(data / "postln.log"),
                          str(data / "sigma.log"), "--labels", "postln,sigma", "--at", "4,12",
                          "--keys", "loss,ent_enc_self_min", "--output", str(tmp_path / "cmp.md")],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    rows = [l for l in (tmp_path / "cmp.md").read_text().splitlines() if l.startswith("| postln") or l.startswith("| sigma")]
    assert len(rows) == 4 and all("→" in r for r in rows)
    res = subprocess.run([sys.executable, "-m", "sigma_plugin.recipe.compare", str(data / "postln.log"),
                          "--labels", "a,b"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2 and "--labels has 2 names for 1 runs" in res.stderr


def test_compare_does_not_carry_a_stopped_run_forward(tmp_path):
    """A run whose log ends at update 12 shows — at update 20, not its last value again."""
    data = ROOT / "tests" / "data"
    res = subprocess.run([sys.executable, "-m", "sigma_plugin.recipe.compare", str(data / "postln.log"),
                          "--labels", "postln", "--at", "12,20", "--keys", "loss"],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    row = next(l for l in res.stdout.splitlines() if l.startswith("| postln | loss"))
    at12, at20 = [c.strip() for c in row.split("|")[3:5]]
    assert at12 != "—" and at20 == "—"


def test_score_table(tmp_path):
    r = {"name": "run/test", "bleu": 12.345, "chrf": 40.0, "sentences": 3, "bleu_signature": "nrefs:1",
         "chrf_signature": "nc:6"}
    (tmp_path / "results.json").write_text(json.dumps(r))
    res = subprocess.run([sys.executable, "-m", "sigma_plugin.recipe.score_table", str(tmp_path / "results.json"),
                          "--output", str(tmp_path / "t.md")], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0 and "| run/test | 12.35 | 40.00 | 3 |" in (tmp_path / "t.md").read_text()


def test_clean_rejects_non_utf8_with_file_and_line_and_writes_raw_line_ids(tmp_path):
    (tmp_path / "train.en").write_text("one\ntwo\nthree\n")
    (tmp_path / "train.de").write_bytes("eins\nzwei\n".encode() + "drei Größe\n".encode("latin-1"))
    with pytest.raises(StepError, match=r"train\.de:3: not valid UTF-8 \(byte 0xf6"):
        clean.clean_split(tmp_path / "train", tmp_path / "out" / "train", "en", "de", True, 200, 3.0)
    assert not (tmp_path / "out" / "train.en").exists()  # nothing half-written
    (tmp_path / "train.de").write_text("eins\n\ndrei\n")
    clean.clean_split(tmp_path / "train", tmp_path / "out" / "train", "en", "de", True, 200, 3.0)
    assert (tmp_path / "out" / "train.ids").read_text().split() == ["1", "3"]  # raw lines kept


def test_check_corpus_counts_bad_utf8_lines(tmp_path):
    (tmp_path / "test.en").write_text("a\nb\nc\n")
    (tmp_path / "test.de").write_bytes(b"a\n\xe4\n\xfc\n")
    res = subprocess.run([sys.executable, "-m", "sigma_plugin.recipe.check_corpus", "--prefix", str(tmp_path),
                          "--src", "en", "--tgt", "de", "--splits", "test"], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "test.de:2: not valid UTF-8" in res.stderr and "2 line(s)" in res.stderr


def test_spm_splits_drop_long_training_pairs_and_cut_eval_lines(tmp_path):
    from sigma_plugin.recipe import spm, spm_splits
    from sigma_plugin.util.spm import train_sentencepiece
    words = [f"word{i}" for i in range(60)]
    text = "\n".join(" ".join(words[(i + k) % 60] for k in range(5)) for i in range(200)) + "\n"
    long_token = "".join(random.Random(0).choice("word0123456789") for _ in range(20000))  # known characters
    for split in ("train", "test"):
        (tmp_path / f"{split}.en").write_text(text + long_token + "\n")
        (tmp_path / f"{split}.de").write_text(text + "kurz\n")
    train_sentencepiece([tmp_path / "train.en", tmp_path / "train.de"], tmp_path / "m", 60, "unigram",
                        max_sentences=10000)
    sp = spm.load(tmp_path / "m.model")
    st = spm_splits.encode_split(sp, tmp_path / "train", tmp_path / "o" / "train", "en", "de", 50, drop=True)
    assert st["dropped"] == 1 and st["lines_out"] == 200 and st["longest"] > 50
    st = spm_splits.encode_split(sp, tmp_path / "test", tmp_path / "o" / "test", "en", "de", 50, drop=False)
    assert st["cut"] == 1 and st["lines_out"] == 201
    lengths = [len(l.split()) for l in (tmp_path / "o" / "test.en").read_text().splitlines()]
    assert max(lengths) == 50 and len(lengths) == 201


def test_score_mt_against_the_raw_lines_named_by_ids(tmp_path):
    # raw text as it is (full-width letters NFKC would change), the filtered line 2 left out
    (tmp_path / "raw").write_text("ＡＢＣ the raw line one here\nraw two\nthe raw line three here\n")
    (tmp_path / "ids").write_text("1\n3\n")
    (tmp_path / "hyp").write_text("ＡＢＣ the raw line one here\nthe raw line three here\n")
    res = subprocess.run([sys.executable, "-m", "sigma_plugin.recipe.score_mt", "--hyp", str(tmp_path / "hyp"),
                          "--ref", str(tmp_path / "raw"), "--ref-lines", str(tmp_path / "ids"),
                          "--output", str(tmp_path / "r.json")], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["bleu"] == 100.0 and r["sentences"] == 2 and r["ref_lines_total"] == 3
    assert "scored 2 of the 3 lines" in res.stdout
    (tmp_path / "ids").write_text("1\n7\n")
    res = subprocess.run([sys.executable, "-m", "sigma_plugin.recipe.score_mt", "--hyp", str(tmp_path / "hyp"),
                          "--ref", str(tmp_path / "raw"), "--ref-lines", str(tmp_path / "ids"),
                          "--output", str(tmp_path / "r.json")], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 2 and "ids:2: '7' is not a line number" in res.stderr


def test_compare_reads_validation_metrics_with_a_valid_prefix(tmp_path):
    log = tmp_path / "run.log"
    log.write_text(
        '2026-01-01 | INFO | train_inner | {"epoch": 1, "loss": "9.0", "num_updates": "100"}\n'
        '2026-01-01 | INFO | valid | {"epoch": 1, "valid_loss": "8.5", "valid_num_updates": "100"}\n'
        '2026-01-01 | INFO | train_inner | {"epoch": 1, "loss": "8.0", "num_updates": "200"}\n'
        '2026-01-01 | INFO | valid | {"epoch": 1, "valid_loss": "7.5", "valid_num_updates": "200"}\n')
    res = subprocess.run([sys.executable, "-m", "sigma_plugin.recipe.compare", str(log), "--labels", "a",
                          "--at", "100,200", "--keys", "valid:loss,loss"], capture_output=True, text=True, check=True)
    rows = [line for line in res.stdout.splitlines() if line.startswith("| a |")]
    assert rows[0].startswith("| a | valid:loss | 8.500 | 7.500 |") and rows[1].startswith("| a | loss | 9.000 | 8.000 |")
