"""Scoring per voice (SPEAKERS.txt) and several decodings in one table."""
import subprocess
import sys

import pytest

from _asr_corpus import write_speakers
from sigma_plugin.asr.score import read_speakers, score


def write_decoding(path, subset, hyps):
    gen = path / subset / f"generate-{subset}.txt"
    gen.parent.mkdir(parents=True, exist_ok=True)
    gen.write_text("".join(f"T-{i}\tx\nH-{i}\t-1.0\tx\nD-{i}\t-1.0\t{h}\n" for i, h in enumerate(hyps)))


@pytest.fixture
def scored(tmp_path):
    dump, corpus = tmp_path / "dump", tmp_path / "corpus"
    dump.mkdir()
    (dump / "dev-tts.tsv").write_text("id\ttgt_text\tspeaker\na\tHELLO WORLD\t2000\nb\tGOOD DAY\t2000\n"
                                      "c\tNEW YORK\t2001\nd\tOLD TOWN\t2002\n")
    write_speakers(corpus / "dev-tts", {"2000": "flite:awb", "2001": "espeak:en-wm+f5"})
    write_decoding(tmp_path / "greedy", "dev-tts", ["HELLO WORLD", "GOOD DAY", "NEW YORKS", "OLD TOWN"])
    write_decoding(tmp_path / "beam", "dev-tts", ["HELLO WORLD", "GOOD DAY", "NEW YORK", "OLD TOWN"])
    return tmp_path


def test_per_voice_rates_and_file(scored):
    [res] = score(scored / "dump", scored / "greedy", ["dev-tts"], scored / "corpus")
    by_voice = {v["voice"]: v for v in res["voices"]}
    # speaker 2002 is not in SPEAKERS.txt: counted under its id
    assert sorted(by_voice) == ["2002", "espeak:en-wm+f5", "flite:awb"]
    assert by_voice["flite:awb"]["utts"] == 2 and by_voice["flite:awb"]["cer"] == 0.0
    assert by_voice["espeak:en-wm+f5"]["wer"] == 50.0 and by_voice["espeak:en-wm+f5"]["cer"] == round(100 / 8, 2)
    lines = (scored / "greedy" / "dev-tts" / "per_voice.tsv").read_text().splitlines()
    assert lines[0] == "voice\tutts\twords\twer\tchars\tcer" and len(lines) == 4
    # without a speakers root nothing per voice
    [plain] = score(scored / "dump", scored / "beam", ["dev-tts"])
    assert "voices" not in plain


def test_cli_one_table_for_two_decodings(scored):
    res = subprocess.run([sys.executable, "-m", "sigma_plugin.asr.score", "--data-dir", str(scored / "dump"),
                          "--decode-dir", str(scored / "greedy"), str(scored / "beam"), "--subsets", "dev-tts",
                          "--speakers-root", str(scored / "corpus")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0] == "decode\tsubset\tutts\twords\twer\tsub\tdel\tins\tchars\tcer"
    assert lines[1].startswith("greedy\tdev-tts\t4\t8\t12.5\t") and lines[2].startswith("beam\tdev-tts\t4\t8\t0.0\t")
    assert "dev-tts (greedy): per voice (3 voices)" in res.stdout
    assert (scored / "beam" / "RESULTS.tsv").is_file() and (scored / "beam" / "dev-tts" / "per_voice.tsv").is_file()


def test_bad_speakers_file_and_root_are_named(scored):
    (scored / "corpus" / "dev-tts" / "SPEAKERS.txt").write_text("2000 flite:awb\n")
    with pytest.raises(ValueError, match=r"SPEAKERS.txt:1: expected 'ID \| SEX \| SUBSET \| MINUTES \| NAME'"):
        read_speakers(scored / "corpus" / "dev-tts" / "SPEAKERS.txt")
    res = subprocess.run([sys.executable, "-m", "sigma_plugin.asr.score", "--data-dir", str(scored / "dump"),
                          "--decode-dir", str(scored / "greedy"), "--subsets", "dev-tts",
                          "--speakers-root", str(scored / "nowhere")], capture_output=True, text=True)
    assert res.returncode == 2 and "error: --speakers-root" in res.stderr and "folder not found" in res.stderr
