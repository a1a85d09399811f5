"""ASR data prep: LibriSpeech-layout scanning, bad-input policy, fbank zips fairseq can read,
vocabulary/config, scoring, checkpoint averaging, config-to-flags."""
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from _asr_corpus import RATE, prepare, tone, write_chapter, write_corpus
from sigma_plugin.asr.corpus import CorpusError, scan_subset
from sigma_plugin.decoding.ctc_greedy import ctc_greedy_decode
from sigma_plugin.asr.feature_zip import member_spans
from sigma_plugin.asr.features import AudioFormatError
from sigma_plugin.asr.manifest import read_tsv
from sigma_plugin.asr.prep_fbank import TooManySkipped, main as prep_fbank_main, prep_subset
from sigma_plugin.asr.score import score_subset
from sigma_plugin.asr.text_norm import normalize_transcript

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = write_corpus(tmp_path_factory.mktemp("corpus"))
    return root, prepare(root, tmp_path_factory.mktemp("dump"))


# ---- scanning ----------------------------------------------------------------------------

def test_scan_reads_layout_sorted_with_speakers(tmp_path):
    write_chapter(tmp_path / "train-x", "7", "2", {"0001": "B  TEXT", "0000": "A TEXT"})
    write_chapter(tmp_path / "train-x", "3", "9", {"0000": "C"})
    (tmp_path / "train-x" / "SPEAKERS.txt").write_text("ignored\n")
    utts, skipped = scan_subset(tmp_path, "train-x")
    assert [u.utt_id for u in utts] == ["3-9-0000", "7-2-0000", "7-2-0001"]
    assert [u.speaker for u in utts] == ["3", "7", "7"] and utts[2].text == "B TEXT"
    assert skipped == []


def test_scan_skips_and_reports_unpaired_and_empty(tmp_path):
    write_chapter(tmp_path / "dev", "1", "1", {"0000": "OK", "0001": None, "0002": "NO AUDIO", "0003": ""},
                  audio={"0002": None})
    utts, skipped = scan_subset(tmp_path, "dev")
    assert [u.utt_id for u in utts] == ["1-1-0000"]
    reasons = {s.utt_id: s.reason for s in skipped}
    assert reasons["1-1-0001"].startswith("audio without transcript")
    assert reasons["1-1-0002"] == "transcript line without audio file"
    assert reasons["1-1-0003"] == "empty transcript"


@pytest.mark.parametrize("problem, message", [
    ("missing", "subset folder not found"),
    ("empty", "no usable utterances"),
    ("bad_id", "does not match its folder"),
    ("duplicate", "duplicate utterance id"),
])
def test_scan_errors_name_the_problem(tmp_path, problem, message):
    subset = tmp_path / "s"
    if problem == "empty":
        (subset / "1" / "1").mkdir(parents=True)
    elif problem in ("bad_id", "duplicate"):
        chap = write_chapter(subset, "1", "1", {"0000": "A"})
        extra = "9-9-0001 B\n" if problem == "bad_id" else "1-1-0000 AGAIN\n"
        with open(chap / "1-1.trans.txt", "a") as f:
            f.write(extra)
    with pytest.raises(CorpusError, match=message):
        scan_subset(tmp_path, "s")


# ---- fbank + manifests ----------------------------------------------------------------------

def test_features_and_manifest_are_what_fairseq_reads(prepared):
    from fairseq.data.audio.audio_utils import get_features_or_waveform
    _, dump = prepared
    rows = read_tsv(dump / "train-tone.tsv", required=("id", "audio", "n_frames", "tgt_text", "speaker"))
    assert len(rows) == 6 and rows[0]["speaker"] == "11"
    feats = get_features_or_waveform(str(dump / rows[0]["audio"]))
    assert feats.shape == (int(rows[0]["n_frames"]), 80) and feats.dtype == np.float32
    assert int(rows[0]["n_frames"]) == 1 + (8000 - 400) // 160  # 0.5 s, 25 ms / 10 ms frames
    stats = np.load(dump / "train-tone.fbank_stats.npz")
    assert int(stats["count"]) == sum(int(r["n_frames"]) for r in rows)
    assert read_tsv(dump / "train-tone.skipped.tsv") == []
    assert not list(dump.glob(".*tmp*")), "temporary files left behind"


def test_bad_audio_is_skipped_listed_and_bounded(tmp_path):
    chap = write_chapter(tmp_path / "train-b", "1", "1", {f"{i:04d}": "WORD" for i in range(4)},
                         audio={"0002": tone(0.01)})           # shorter than one 25 ms frame
    (chap / "1-1-0003.flac").write_bytes(b"not a flac file")   # unreadable
    with pytest.raises(TooManySkipped, match="2/4 utterances skipped"):
        prep_subset(tmp_path, "train-b", tmp_path / "out")
    assert not (tmp_path / "out" / "train-b.tsv").exists()
    prep_subset(tmp_path, "train-b", tmp_path / "out", max_skip_ratio=0.5)
    assert [r["id"] for r in read_tsv(tmp_path / "out" / "train-b.tsv")] == ["1-1-0000", "1-1-0001"]
    skipped = {r["id"]: r["reason"] for r in read_tsv(tmp_path / "out" / "train-b.skipped.tsv")}
    assert "shorter than one" in skipped["1-1-0002"] and "unreadable" in skipped["1-1-0003"]


def test_wrong_sample_rate_is_an_error_naming_the_file(tmp_path):
    write_chapter(tmp_path / "train-r", "1", "1", {"0000": "A"}, audio={"0000": tone(0.5, rate=8000)}, rate=8000)
    with pytest.raises(AudioFormatError, match=r"1-1-0000\.flac: sample rate 8000 Hz, expected 16000"):
        prep_subset(tmp_path, "train-r", tmp_path / "out")
    assert prep_fbank_main(["--root", str(tmp_path), "--subsets", "train-r", "--out-dir", str(tmp_path / "o")]) == 2


def test_rerun_keeps_finished_subsets_and_parallel_matches_serial(tmp_path):
    write_corpus(tmp_path)
    serial = prep_subset(tmp_path, "train-tone", tmp_path / "a")
    mtime = serial.stat().st_mtime_ns
    assert prep_subset(tmp_path, "train-tone", tmp_path / "a").stat().st_mtime_ns == mtime
    parallel = prep_subset(tmp_path, "train-tone", tmp_path / "b", nj=2)
    assert serial.read_text() == parallel.read_text()


def test_member_spans_refuse_compressed_zip(tmp_path):
    z = tmp_path / "c.zip"
    with zipfile.ZipFile(z, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.npy", b"\x93NUMPY" + b"0" * 100)
    with pytest.raises(ValueError, match="compressed"):
        member_spans(z)


# ---- vocabulary and task config ----------------------------------------------------------------

def test_vocab_and_config(prepared):
    import sentencepiece as spm
    from fairseq.data import Dictionary
    _, dump = prepared
    cfg = yaml.safe_load((dump / "config.yaml").read_text())
    assert cfg["vocab_filename"] == "spm_char.txt" and cfg["input_feat_per_channel"] == 80
    assert cfg["feature_transforms"] == {"*": ["global_cmvn"]}
    cmvn = np.load(cfg["global_cmvn"]["stats_npz_path"])
    assert cmvn["mean"].shape == (80,) and (cmvn["std"] > 0).all()
    sp = spm.SentencePieceProcessor(model_file=cfg["bpe_tokenizer"]["sentencepiece_model"])
    d = Dictionary.load(str(dump / "spm_char.txt"))
    assert len(d) == sp.get_piece_size()
    assert all(d.index(sp.id_to_piece(i)) == i for i in range(4, sp.get_piece_size()))  # ids coincide


# ---- scoring ---------------------------------------------------------------------------------

def test_text_normalisation():
    assert normalize_transcript("Don\u2019t -- stop, HAL!  non-aligned") == "DON'T STOP HAL NON ALIGNED"


def _generate_file(path, hyps):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"T-{i}\tREF\nH-{i}\t-1.0\tx\nD-{i}\t-1.0\t{h}\n" for i, h in hyps.items()))


def test_score_wer_cer_and_missing_hypotheses(tmp_path):
    (tmp_path / "s.tsv").write_text("id\ttgt_text\nu1\tHELLO WORLD\nu2\tIT'S OK\n")
    _generate_file(tmp_path / "g.txt", {1: "it's, ok!", 0: "hello word"})
    res = score_subset(tmp_path / "s.tsv", tmp_path / "g.txt")
    assert (res["utts"], res["words"], res["wer"], res["sub"]) == (2, 4, 25.0, 1)
    assert res["cer"] == round(100 * 1 / 18, 2)  # one deleted letter in 11 + 7 characters
    _generate_file(tmp_path / "g.txt", {1: "it's ok"})
    with pytest.raises(ValueError, match=r"1 manifest rows without hypothesis \(e.g. \['u1'\]\)"):
        score_subset(tmp_path / "s.tsv", tmp_path / "g.txt")


def test_ctc_greedy_merges_repeats_then_drops_blanks():
    path = [0, 5, 5, 0, 5, 6, 6, 0]  # blank=0: "5 5 6"
    lprobs = torch.nn.functional.one_hot(torch.tensor(path), 8).float().unsqueeze(1)
    assert ctc_greedy_decode(lprobs, torch.tensor([8]), blank=0) == [[5, 5, 6]]
    assert ctc_greedy_decode(lprobs, torch.tensor([3]), blank=0) == [[5]]


# ---- shipped training configs ----------------------------------------------------------------

@pytest.mark.parametrize("conf", sorted((ROOT / "egs").glob("*/asr1/conf/**/*.yaml")),  # conf/budget60/ too
                         ids=lambda p: str(p.relative_to(ROOT / "egs")))
def test_shipped_asr_configs_are_valid_fairseq_train_options(conf):
    from sigma_plugin.recipe.conf import check_flags, load_conf, to_flags
    c = load_conf(conf)
    assert c["task"] == "speech_to_text" and c["arch"].startswith(("sigma_s2t_transformer", "sigma_s2t_ctc"))
    check_flags(to_flags(c, str(conf)), "DATA", str(conf))
