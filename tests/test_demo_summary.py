"""The demo's final table and examples (python -m sigma_plugin.recipe.demo_summary) on recorded outputs."""
import json
import subprocess
import sys


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


def summary(root, *extra):
    return subprocess.run([sys.executable, "-m", "sigma_plugin.recipe.demo_summary", "--workdir", str(root), *extra],
                          capture_output=True, text=True, check=True).stdout


def test_table_and_examples(tmp_path):
    write_outputs(tmp_path)
    out = summary(tmp_path, "--examples", "1")
    assert "MT train_demo/test      BLEU 12.35  chrF 40.10" in out
    assert "ASR train_demo/dev-tts  WER 25.00  CER 10.50" in out
    # examples in sentence-id order, the detokenised hypothesis (D-), one per model with --examples 1
    assert "src: Save\n  ref: Speichern\n  hyp: Speichern" in out and "Open file" not in out
    assert "utt: u1\n  ref: HELLO WORLD\n  hyp: HELLO WORD" in out and "u2" not in out
    assert "ref:" not in summary(tmp_path, "--examples", "0")


def test_nothing_yet(tmp_path):
    assert "no results under" in summary(tmp_path)
