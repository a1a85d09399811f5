"""The synthetic-speech builder: sentence choice, voices, LibriSpeech layout, resume, errors."""
import json
import os
import re
import shutil
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from sigma_plugin.corpus import tts
from sigma_plugin.corpus.tts_engines import resample
from sigma_plugin.corpus.tts_text import candidate_sentences, normalise_sentence, pick_sentences
from sigma_plugin.corpus.tts_voices import SPEEDS, VOICES

SENTENCES = [f"The {a} {b} opens the window {c} times." for a in ("red", "blue", "green", "old")
             for b in ("cat", "dog", "bird", "fish", "horse") for c in ("two", "three", "four")]


def sine_synth(voice, speed, text):
    """Stands in for espeak-ng/flite: a tone whose length follows the text, at 22.05 kHz."""
    rate = 22050
    t = np.arange(int(rate * (0.3 + 0.02 * len(text) / speed))) / rate
    return 0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32), rate


CALLS = Counter()


def counting_synth(voice, speed, text):
    CALLS["n"] += 1
    if CALLS["n"] == CALLS.get("fail_at", -1):
        raise RuntimeError("synthesiser crashed")
    return sine_synth(voice, speed, text)


def refusing_synth(voice, speed, text):
    raise AssertionError("a complete subset must not be synthesised again")


@pytest.fixture
def sentences_file(tmp_path):
    path = tmp_path / "sentences.txt"
    path.write_text("\n".join(SENTENCES + ["Too short", "Has 3 digits in it", "Use the URL bar now"])
                    + "\n", encoding="utf-8")
    return path


# --- sentences ----------------------------------------------------------------------------

@pytest.mark.parametrize("raw, transcript", [
    ("Don't stop the music.", "DON'T STOP THE MUSIC"),
    ("The users' files are here", "THE USERS' FILES ARE HERE"),
    ("'Quoted' words, with commas; and more!", "QUOTED WORDS WITH COMMAS AND MORE"),
    ("Send an e-mail to everyone", "SEND AN E MAIL TO EVERYONE"),
    ("Open 3 files now", None), ("Use the URL bar", None), ("Größe jetzt ändern", None),
    ("Two words", None), (" ".join(["word"] * 21), None), ("Copy %s to the folder", None),
])
def test_normalise_sentence(raw, transcript):
    got = normalise_sentence(raw)
    assert (got[1] if got else None) == transcript
    if got:
        assert got[0].upper().rstrip(".") == transcript


def test_pick_sentences_is_disjoint_seeded_and_checks_size():
    cands = candidate_sentences(SENTENCES + SENTENCES)            # duplicates collapse
    assert len(cands) == len(SENTENCES)
    groups = pick_sentences(cands, [30, 10, 10], seed=3)
    assert [len(g) for g in groups] == [30, 10, 10]
    assert len({t for g in groups for _, t in g}) == 50
    assert groups == pick_sentences(cands, [30, 10, 10], seed=3)
    assert groups != pick_sentences(cands, [30, 10, 10], seed=4)
    with pytest.raises(ValueError, match="61 sentences needed but only 60"):
        pick_sentences(cands, [41, 10, 10], seed=3)


# --- voices and plan ----------------------------------------------------------------------

def test_dev_and_test_voices_never_occur_in_training():
    def parts(kind):
        vs = VOICES[kind]
        return ({v.label for v in vs}, {v.name for v in vs if v.engine == "espeak-ng"},
                {v.variant for v in vs if v.variant}, {v.name for v in vs if v.engine == "flite"})
    train = parts("train")
    for held_out in ("dev", "test"):
        for seen, unseen in zip(train, parts(held_out)):
            assert not seen & unseen
    assert not parts("dev")[0] & parts("test")[0]
    assert len(VOICES["train"]) >= 20 and SPEEDS["train"] == (0.9, 1.0, 1.1)


def test_plan_uses_voices_evenly_with_unique_librispeech_ids():
    sents = [(s, s.upper()) for s in SENTENCES[:54]]
    voices = VOICES["train"][:6]
    utts = tts.plan_subset("train", sents, voices, SPEEDS["train"], seed=1)
    ids = [u["id"] for u in utts]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"1\d{3}-1\d{4}-\d{4}", i) for i in ids)
    per_combo = Counter((u["voice"], u["variant"], u["speed"]) for u in utts)
    assert len(per_combo) == 18 and set(per_combo.values()) == {3}
    assert utts == tts.plan_subset("train", sents, voices, SPEEDS["train"], seed=1)


def test_resample_keeps_frequency_and_duration():
    rate = 22050
    t = np.arange(rate) / rate
    out = resample(np.sin(2 * np.pi * 1000 * t), rate, 16000)
    assert len(out) == 16000 and out.dtype == np.float32
    peak_hz = np.argmax(np.abs(np.fft.rfft(out))) * 16000 / len(out)
    assert abs(peak_hz - 1000) <= 1


# --- LibriSpeech layout -------------------------------------------------------------------

def check_librispeech_subset(subset_dir, n):
    flacs = sorted(subset_dir.glob("*/*/*.flac"))
    assert len(flacs) == n
    transcripts = {}
    for trans in subset_dir.glob("*/*/*.trans.txt"):
        speaker, chapter = trans.parent.parent.name, trans.parent.name
        assert trans.name == f"{speaker}-{chapter}.trans.txt"
        for line in trans.read_text().splitlines():
            utt, text = line.split(" ", 1)
            assert utt.startswith(f"{speaker}-{chapter}-") and re.fullmatch(r"[A-Z' ]+", text)
            transcripts[utt] = text
    for flac in flacs:
        speaker, chapter = flac.parent.parent.name, flac.parent.name
        assert re.fullmatch(rf"{speaker}-{chapter}-\d{{4}}\.flac", flac.name)
        assert flac.stem in transcripts
        info = sf.info(str(flac))
        assert info.samplerate == 16000 and info.channels == 1 and info.format == "FLAC"
    assert len(transcripts) == n
    assert not [p for p in subset_dir.rglob("*") if ".tmp-" in p.name]
    return transcripts


@pytest.mark.parametrize("nj", [1, 2])
def test_build_writes_librispeech_layout(tmp_path, sentences_file, nj):
    root = tmp_path / "LibriSpeech"
    out = tts.build(tmp_path / "w", root, sentences_file, n_train=24, n_dev=6, n_test=6, nj=nj,
                    synth=sine_synth, log=lambda m: None)
    assert sorted(p.name for p in root.iterdir()) == ["dev-tts", "test-tts", "train-tts"]
    texts = {}
    for kind, n in (("train", 24), ("dev", 6), ("test", 6)):
        subset = root / f"{kind}-tts"
        texts[kind] = set(check_librispeech_subset(subset, n).values())
        assert out[kind]["utterances"] == n
        speakers = (subset / "SPEAKERS.txt").read_text().splitlines()
        assert speakers[0].startswith(";ID")
        rows = [line.split("|") for line in speakers[1:]]
        assert {r[0].strip() for r in rows} == {p.name for p in subset.iterdir() if p.is_dir()}
        assert all(r[4].strip().split(":")[0] in ("espeak-ng", "flite") for r in rows)
    assert not texts["train"] & texts["dev"] and not texts["dev"] & texts["test"]


def test_interrupted_subset_resumes_without_redoing_finished_utterances(tmp_path, sentences_file):
    root = tmp_path / "LS"
    kw = dict(n_train=12, n_dev=0, n_test=0, nj=1, log=lambda m: None)
    CALLS.clear()
    CALLS["fail_at"] = 5
    with pytest.raises(SystemExit, match="1 of 12 utterances.*failed.*rerun"):
        tts.build(tmp_path / "w", root, sentences_file, synth=counting_synth, **kw)
    subset = root / "train-tts"
    assert not (subset / tts.COMPLETE_FILE).exists()
    assert not list(subset.glob("*/*/*.trans.txt"))             # written only at the end
    assert len(list(subset.glob("*/*/*.flac"))) == 11
    leftover = next(subset.glob("*/*/*.flac")).with_name(".x.flac.tmp-99999")
    leftover.write_bytes(b"half a file")                         # as a killed worker leaves it
    CALLS.clear()
    tts.build(tmp_path / "w", root, sentences_file, synth=counting_synth, **kw)
    assert CALLS["n"] == 1                                       # only the missing one
    assert not leftover.exists()
    check_librispeech_subset(subset, 12)
    summary = json.loads((subset / tts.COMPLETE_FILE).read_text())
    assert summary["utterances"] == 12 and summary["hours"] > 0
    # complete: a rerun touches nothing; other settings need --force
    tts.build(tmp_path / "w", root, sentences_file, synth=refusing_synth, **kw)
    with pytest.raises(SystemExit, match="seed differ.*--force"):
        tts.build(tmp_path / "w", root, sentences_file, synth=sine_synth, seed=2,
                  **{**kw, "log": lambda m: None})
    tts.build(tmp_path / "w", root, sentences_file, synth=sine_synth, seed=2, force=True, **kw)
    check_librispeech_subset(subset, 12)


def test_custom_subset_names(tmp_path, sentences_file):
    tts.build(tmp_path / "w", tmp_path / "R", sentences_file, n_train=3, n_dev=2, n_test=0, nj=1,
              names={"train": "train-clean-5", "dev": "dev-clean-2"}, synth=sine_synth,
              log=lambda m: None)
    assert sorted(p.name for p in (tmp_path / "R").iterdir()) == ["dev-clean-2", "train-clean-5"]


# --- error messages ----------------------------------------------------------------------

def test_too_few_sentences_is_explained(tmp_path, sentences_file):
    with pytest.raises(SystemExit, match=r"has 60 usable sentences.*--n-train \+ --n-dev"):
        tts.build(tmp_path / "w", tmp_path / "R", sentences_file, n_train=100, synth=sine_synth,
                  log=lambda m: None)


def test_missing_sentence_file_is_named(tmp_path):
    with pytest.raises(SystemExit, match="--sentences .*nope.txt: no such file"):
        tts.build(tmp_path / "w", tmp_path / "R", tmp_path / "nope.txt", synth=sine_synth)


def test_missing_apt_tools_says_what_to_do(tmp_path, sentences_file, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))                  # no apt-get, no dpkg
    with pytest.raises(SystemExit) as e:
        tts.main(["--workdir", str(tmp_path / "w"), "--root", str(tmp_path / "R"),
                  "--sentences", str(sentences_file), "--n-train", "3", "--n-dev", "1",
                  "--n-test", "1"])
    msg = str(e.value)
    assert "apt-get" in msg and "dpkg" in msg and "TTS_ROOT=" in msg


# --- real engines (network to the Debian mirror) -----------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt-get and dpkg")
def test_real_synthesis_with_unpacked_espeak_ng_and_flite(tmp_path, sentences_file):
    root = tmp_path / "LibriSpeech"
    out = tts.build(tmp_path / "w", root, sentences_file, n_train=8, n_dev=3, n_test=3, nj=2,
                    log=print)
    for kind, n in (("train", 8), ("dev", 3), ("test", 3)):
        check_librispeech_subset(root / f"{kind}-tts", n)
        assert out[kind]["hours"] * 3600 > 0.8 * n              # real speech, > 0.8 s each
    for flac in root.glob("*/*/*/*.flac"):
        audio, _ = sf.read(str(flac))
        assert np.sqrt(np.mean(audio ** 2)) > 0.01                # not silence
    assert os.path.isdir(tmp_path / "w/root/usr/bin")
