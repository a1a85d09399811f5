"""The demo's final table and examples (python -m sigma_plugin.recipe.demo_summary) on recorded
outputs, and its terminal filter (--console)."""
import io
import json
import subprocess
import sys

from sigma_plugin.recipe.demo_summary import Console


def write_outputs(root):
    mt = root / "mt/exp/train_demo/decode_test"
    mt.mkdir(parents=True)
    (mt / "results.json").write_text(json.dumps({"name": "train_demo/test", "bleu": 12.345, "chrf": 40.1}))
    (mt / "generate.out").write_text(
        "S-1\tOpen file\nT-1\tDatei öffnen\nH-1\t-0.5\tDatei öffnen\nD-1\t-0.5\tDatei öffnen\nP-1\t-0.1 -0.2\n"
        "S-0\tSave\nT-0\tSpeichern\nH-0\t-0.2\tSpeichern\nD-0\t-0.2\tSpeichern\n"
        "2026-01-01 | INFO | fairseq_cli.generate | Translated 2 sentences\n", encoding="utf-8")
    asr = root / "asr/exp/train_demo/decode_checkpoint_avg_ctc_greedy"
    (asr / "dev-tts").mkdir(parents=True)
    (asr / "RESULTS.tsv").write_text("subset\twer\tcer\ndev-tts\t25.0\t10.5\n")
    (asr / "dev-tts/hyp_ref.tsv").write_text("id\tref\thyp\nu1\tHELLO WORLD\tHELLO WORD\nu2\tGOOD\tGOOD\n")
    (asr / "dev-tts/per_voice.tsv").write_text("voice\tutts\twords\twer\tchars\tcer\n"
                                              "flite:awb\t1\t2\t50.0\t11\t9.09\nespeak:en-wm+f5\t1\t1\t0.0\t4\t0.0\n")
    lm = root / "lm/exp/train_demo/eval_test"
    lm.mkdir(parents=True)
    (lm / "results.json").write_text(json.dumps({"name": "train_demo/test", "ppl_per_token": 61.234,
                                                 "ppl_per_word": 150.06, "tokens": 900, "words": 700}))
    beam = root / "asr/exp/train_demo/decode_checkpoint_avg_ctc_beam5"
    (beam / "dev-tts").mkdir(parents=True)
    (beam / "RESULTS.tsv").write_text("subset\twer\tcer\ndev-tts\t20.0\t8.25\n")
    (beam / "dev-tts/per_voice.tsv").write_text("voice\tutts\twords\twer\tchars\tcer\nflite:awb\t1\t2\t0.0\t11\t4.5\n")


def summary(root, *extra):
    return subprocess.run([sys.executable, "-m", "sigma_plugin.recipe.demo_summary", "--workdir", str(root), *extra],
                          capture_output=True, text=True, check=True).stdout


def test_table_and_examples(tmp_path):
    write_outputs(tmp_path)
    out = summary(tmp_path, "--examples", "1")
    table = [" ".join(line.split()[:7]) for line in out.splitlines()]
    assert "MT train_demo/test BLEU 12.35 chrF 40.10" in [" ".join(line.split()[:6]) for line in out.splitlines()]
    assert "LM train_demo/test perplexity 61.2/token 150.1/word" in [" ".join(line.split()[:5]) for line in out.splitlines()]
    # one row per decoding of the ASR model
    assert "ASR train_demo/dev-tts avg_ctc_beam5 WER 20.00 CER 8.25" in table
    assert "ASR train_demo/dev-tts avg_ctc_greedy WER 25.00 CER 10.50" in table
    # per voice: one column per decoding, "-" where a decoding has no score for the voice
    assert "ASR train_demo/dev-tts: CER (%) per voice" in out
    cells = [line.split() for line in out.splitlines()]
    assert ["voice", "avg_ctc_beam5", "avg_ctc_greedy"] in cells
    assert ["espeak:en-wm+f5", "-", "0.00"] in cells and ["flite:awb", "4.50", "9.09"] in cells
    # examples in sentence-id order, the detokenised hypothesis (D-), one per model with --examples 1
    assert "src: Save\n  ref: Speichern\n  hyp: Speichern" in out and "Open file" not in out
    assert "ASR train_demo/dev-tts: first 1 example(s)\n  utt: u1\n  ref: HELLO WORLD\n  hyp avg_ctc_greedy: HELLO WORD" in out
    assert "u2" not in out
    assert "ref:" not in summary(tmp_path, "--examples", "0")


def test_nothing_yet(tmp_path):
    assert "no results under" in summary(tmp_path)


class FakeTty(io.StringIO):
    def isatty(self):
        return True


FAIRSEQ = ("2026-01-01 | INFO | fairseq_cli.train | {'_name': None, 'optimization': {'max_update': 400, 'lr': [1.0]}}\n"
           "2026-01-01 | INFO | fairseq_cli.train | SigmaS2TCTCModel(\n  (encoder): ...\n)\n"
           '2026-01-01 | INFO | train_inner | {"epoch": 1, "update": 0.5, "loss": "4.2", "num_updates": "100"}\n'
           '2026-01-01 | INFO | train_inner | {"epoch": 2, "update": 1.5, "loss": "3.1", "num_updates": "200"}\n'
           "2026-01-01 | INFO | train | {\"epoch\": 1, \"train_loss\": \"4.0\"}\n"
           "2026-01-01 | INFO | dev-tts | {\"epoch\": 2, \"dev-tts_loss\": \"3.5\", \"dev-tts_ctc_tok_err\": \"91.1\", "
           "\"dev-tts_num_updates\": \"200\"}\n")


def run_console(chunks, tty):
    out = FakeTty() if tty else io.StringIO()
    con = Console(out, tty, width=80)
    for c in chunks:
        con.feed(c)
    con.close()
    return out.getvalue()


def test_console_shows_headers_bars_validation_and_errors_only():
    chunks = ["2026-01-01 | asr.sh | ==== stage 2: fbank ====\n",
              "fbank train:   0%|          | 0/20 [00:00<?, ?utt/s]\r",
              "fbank train:  50%|#####     | 10/20 [00:01<00:01, 9.9utt/s]\r",
              "fbank train: 100%|##########| 20/20 [00:02<00:00, 9.9utt/s]\n",
              "2026-01-01 | INFO | sigma_plugin.asr.prep_fbank | train: 20 utterances\n",
              FAIRSEQ[:90], FAIRSEQ[90:],                      # a line split across reads
              "train_demo/test: perplexity 122.06 per token (17,819 tokens), 1985.81 per word (10,949 words)\n",
              "2026-01-01 | asr.sh | error: decoding dev-tts failed; see x.log\n"]
    plain = run_console(chunks, tty=False)
    assert plain.splitlines() == [
        "2026-01-01 | asr.sh | ==== stage 2: fbank ====",
        "fbank train: 100%|##########| 20/20 [00:02<00:00, 9.9utt/s]",
        "  training: update 200/400 [##########..........] epoch 2  loss 3.1",
        "  validation on dev-tts: epoch 2  update 200  loss 3.5  ctc_tok_err 91.1",
        "train_demo/test: perplexity 122.06 per token (17,819 tokens), 1985.81 per word (10,949 words)",
        "2026-01-01 | asr.sh | error: decoding dev-tts failed; see x.log"]
    tty = run_console(chunks, tty=True)
    assert "\rfbank train:  50%|#####" in tty and "\r  training: update 100/400 [#####" in tty
    assert "max_update" not in tty and "SigmaS2TCTCModel" not in tty and "20 utterances" not in tty


def test_console_copies_everything_to_the_log(tmp_path):
    log = tmp_path / "logs" / "step.log"
    text = "==== stage 1: data ====\nquiet line\n" + FAIRSEQ
    res = subprocess.run([sys.executable, "-m", "sigma_plugin.recipe.demo_summary", "--console", str(log)],
                         input=text, capture_output=True, text=True, check=True)
    assert log.read_text() == text
    assert res.stdout.splitlines()[0] == "==== stage 1: data ====" and "quiet line" not in res.stdout
