"""The synthetic-speech builder: sentence choice, voices, LibriSpeech layout, resume, errors."""
import json
import os
import re
import shutil
from collections import Counter

import numpy as np
import pytest
import soundfile as sf

from sigma_plugin.corpus import tts, tts_plan
from sigma_plugin.corpus.tts_commands import command, espeak_pitch, festival_script
from sigma_plugin.corpus.tts_engines import Engines, resample
from sigma_plugin.corpus.tts_text import (candidate_sentences, normalise_sentence, pick_sentences,
                                          read_vocabulary)
from sigma_plugin.corpus.tts_voices import (SPEEDS, ReservedVoiceError, Voice, check_allowed,
                                            parse_weights, split_voices)
from sigma_plugin.util import StepError

ACCENTS = {"espeak-ng": ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbcwmd", "en-us-nyc"],
           "espeak": ["en", "en-sc", "en-wm", "en-n"]}
VARIANTS = ["", "m1", "m2", "m5", "m6", "f1", "f4", "f5", "klatt", "klatt3", "klatt4", "whisper"]
# An inventory like the one the unpacked Debian engines report, reserved voices included.
INVENTORY = ([Voice(e, a, v, "F" if v.startswith("f") else "M") for e, accents in ACCENTS.items()
              for a in accents for v in VARIANTS]
             + [Voice("flite", n) for n in ("kal", "kal16", "rms", "awb", "awb_time", "slt")]
             + [Voice("festival", n) for n in ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")])

SENTENCES = [f"The {a} {b} opens the window {c} times." for a in ("red", "blue", "green", "old")
             for b in ("cat", "dog", "bird", "fish", "horse") for c in ("two", "three", "four")]


def sine_synth(voice, speed, pitch, text):
    """Stands in for the engines: a tone whose length follows the text, at 22.05 kHz."""
    check_allowed(voice)
    rate = 22050
    t = np.arange(int(rate * (0.3 + 0.02 * len(text) / speed))) / rate
    return 0.5 * np.sin(2 * np.pi * 440 * pitch * t).astype(np.float32), rate


CALLS = Counter()


def counting_synth(voice, speed, pitch, text):
    CALLS["n"] += 1
    if CALLS["n"] == CALLS.get("fail_at", -1):
        raise RuntimeError("synthesiser crashed")
    return sine_synth(voice, speed, pitch, text)


def refusing_synth(voice, speed, pitch, text):
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
    split = split_voices(INVENTORY)
    def parts(kind):
        vs = split[kind]
        return ({v.label for v in vs}, {v.name for v in vs if v.engine.startswith("espeak")},
                {v.variant for v in vs if v.variant},
                {v.label for v in vs if not v.engine.startswith("espeak")})
    train = parts("train")
    for held_out in ("dev", "test"):
        assert split[held_out]
        for seen, unseen in zip(train, parts(held_out)):
            assert not seen & unseen
    assert not parts("dev")[0] & parts("test")[0]
    assert "flite:awb" in parts("dev")[3] and "festival:ked_diphone" in parts("test")[3]
    assert {v.engine for v in split["train"]} == {"espeak-ng", "espeak", "flite", "festival"}
    everything = {v.label for vs in split.values() for v in vs}
    assert not {"flite:awb_time", "espeak-ng:en-us+whisper"} & everything     # unusable
    assert len(split["train"]) >= 25 and SPEEDS["train"] == (0.8, 0.9, 1.0, 1.1, 1.2)


@pytest.mark.parametrize("voice", [Voice("flite", "slt"), Voice("festival", "cmu_us_slt_arctic_hts"),
                                   Voice("festival", "cmu_us_slt_arctic_clunits")])
def test_slt_voices_are_refused_everywhere(voice, tmp_path, sentences_file):
    with pytest.raises(ReservedVoiceError, match="slt.*reserved"):
        check_allowed(voice)
    assert voice not in [v for vs in split_voices(INVENTORY + [voice]).values() for v in vs]
    with pytest.raises(ReservedVoiceError):
        tts_plan.plan_subset("train", [("a b c.", "A B C")], [voice], (1.0,), seed=1)
    with pytest.raises(StepError, match="--voices .*slt.*reserved"):
        tts.build(tmp_path / "w", tmp_path / "R", sentences_file, voice_patterns=[voice.label],
                  synth=sine_synth, voices=INVENTORY, log=lambda m: None)
    check_allowed(Voice("espeak-ng", "en-us", "m1"))                           # others pass


def test_a_plan_naming_slt_is_refused_before_synthesis(tmp_path, sentences_file):
    kw = dict(n_train=4, n_dev=0, n_test=0, nj=1, voices=INVENTORY, log=lambda m: None)
    with pytest.raises(StepError, match="1 of 4"):
        CALLS.clear()
        CALLS["fail_at"] = 1
        tts.build(tmp_path / "w", tmp_path / "R", sentences_file, synth=counting_synth, **kw)
    plan_file = tmp_path / "R" / "train-tts" / tts.PLAN_FILE
    plan = json.loads(plan_file.read_text())
    plan["utterances"][0].update(engine="flite", voice="slt", variant="")      # edited by hand
    plan_file.write_text(json.dumps(plan))
    with pytest.raises(StepError, match=r"\.tts-plan\.json: voice flite:slt .*reserved"):
        tts.build(tmp_path / "w", tmp_path / "R", sentences_file, synth=refusing_synth, **kw)


def test_plan_uses_voices_evenly_with_unique_librispeech_ids():
    sents = [(s, s.upper()) for s in SENTENCES[:60]]
    voices = [v for v in split_voices(INVENTORY)["train"] if v.engine == "espeak-ng"][:4]
    speeds = (0.9, 1.0, 1.1)
    utts = tts_plan.plan_subset("train", sents, voices, speeds, seed=1)
    ids = [u["id"] for u in utts]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"1\d{3}-1\d{4}-\d{4}", i) for i in ids)
    per_combo = Counter((u["voice"], u["variant"], u["speed"]) for u in utts)
    assert len(per_combo) == 12 and set(per_combo.values()) == {5}
    pitches = {u["pitch"] for u in utts}
    assert len(pitches) > 30 and all(0.8 <= p <= 1.25 for p in pitches)
    assert all(-20 <= u["gain_db"] <= 0 for u in utts)
    assert utts == tts_plan.plan_subset("train", sents, voices, speeds, seed=1)


def test_plan_shares_sentences_between_engines_by_weight():
    sents = [(f"w{i} x y.", f"W{i} X Y") for i in range(1000)]
    voices = split_voices(INVENTORY)["train"]
    utts = tts_plan.plan_subset("train", sents, voices, (1.0,), seed=2,
                                weights={"espeak-ng": 0.5, "espeak": 0.2, "flite": 0.3})
    assert Counter(u["engine"] for u in utts) == {"espeak-ng": 500, "espeak": 200, "flite": 300}
    flite = Counter(u["voice"] for u in utts if u["engine"] == "flite")
    assert set(flite) == {"kal", "kal16", "rms"} and max(flite.values()) - min(flite.values()) <= 1
    dev = tts_plan.plan_subset("dev", sents[:90], split_voices(INVENTORY)["dev"], (1.0,), seed=2)
    assert set(Counter(u["engine"] for u in dev).values()) == {30}               # equal shares
    assert {u["pitch"] for u in dev} == {1.0}


@pytest.mark.parametrize("spec, error", [("espeak-ng=1,flite=x", "not a number"),
                                         ("mbrola=1", "ENGINE=WEIGHT"), ("flite=-1", ">= 0")])
def test_engine_weights_are_checked(spec, error):
    with pytest.raises(ValueError, match=error):
        parse_weights(spec)
    assert parse_weights("espeak-ng=0.5, flite=0.5") == {"espeak-ng": 0.5, "flite": 0.5}


def test_engine_command_lines_carry_rate_and_pitch():
    e = Engines("/r", {"espeak-ng": "/r/espeak-ng", "espeak": "/r/espeak", "flite": "/r/flite",
                       "festival": "/r/festival"}, {"espeak-ng": "/d1", "espeak": "/d2"}, "/r/fest")
    cmd = command(e, Voice("espeak-ng", "en-us", "m3"), 1.2, 1.25, "Hello there.", "o.wav")
    assert cmd[:4] == ["/r/espeak-ng", "--path=/d1", "-v", "en-us+m3"] and cmd[-1] == "Hello there."
    assert cmd[cmd.index("-s") + 1] == "210" and int(cmd[cmd.index("-p") + 1]) > 60
    assert espeak_pitch(1.0) == 50 and 0 <= espeak_pitch(0.1) < espeak_pitch(3.0) <= 99
    flite_kal = " ".join(command(e, Voice("flite", "kal16"), 0.8, 1.0, "Hi.", "o.wav"))
    assert "duration_stretch=1.250" in flite_kal and "int_f0_target_mean=95.0" in flite_kal
    assert "f0_shift=0.800" in " ".join(command(e, Voice("flite", "awb"), 1.0, 0.8, "Hi.", "o.wav"))
    assert command(e, Voice("festival", "kal_diphone"), 1, 1, "Hi.", "o.wav")[-1] == "--pipe"
    script = festival_script(Voice("festival", "kal_diphone"), 1.25, 1.1, 'Say "hi".', "/t/o.wav")
    assert script.startswith("(voice_kal_diphone)") and "Duration_Stretch 0.800" in script
    assert '"Say  hi ."' in script and '"/t/o.wav"' in script and "(* 1.100" in script
    with pytest.raises(ValueError, match="not available"):
        command(Engines("/r", {"flite": None}), Voice("flite", "kal"), 1, 1, "Hi.", "o.wav")


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
                    synth=sine_synth, voices=INVENTORY, log=lambda m: None)
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
        assert all(r[4].strip().split(":")[0] in ("espeak-ng", "espeak", "flite", "festival") for r in rows)
    assert not texts["train"] & texts["dev"] and not texts["dev"] & texts["test"]
    plan = json.loads((root / "train-tts" / tts.PLAN_FILE).read_text())["utterances"]
    for u in plan[:5]:                                        # loudness follows the planned gain
        audio, _ = sf.read(str(root / "train-tts" / u["id"].split("-")[0] / u["id"].split("-")[1]
                               / f"{u['id']}.flac"))
        assert np.max(np.abs(audio)) == pytest.approx(0.9 * 10 ** (u["gain_db"] / 20), rel=0.02)


def test_dictionary_and_excluded_sentences_are_kept_out(tmp_path, sentences_file):
    words = tmp_path / "words.txt"
    words.write_text("\n".join("the red blue cat dog opens window two three times".split()) + "\n")
    cands = candidate_sentences(SENTENCES, vocabulary=read_vocabulary(words.read_text().splitlines()))
    assert len(cands) == 8 and all("GREEN" not in t and "BIRD" not in t for _, t in cands)
    held = tmp_path / "held.txt"
    held.write_text("\n".join(SENTENCES[:40]) + "\n")
    out = tts.build(tmp_path / "w", tmp_path / "R", sentences_file, n_train=15, n_dev=3, n_test=2,
                    nj=1, exclude=[held], synth=sine_synth, voices=INVENTORY, log=lambda m: None)
    got = {t for k in ("train", "dev", "test")
           for t in check_librispeech_subset(tmp_path / "R" / f"{k}-tts", out[k]["utterances"]).values()}
    assert len(got) == 20 and not got & {normalise_sentence(x)[1] for x in SENTENCES[:40]}
    with pytest.raises(StepError, match="has 8 usable sentences.*all in --dictionary"):
        tts.build(tmp_path / "w", tmp_path / "R2", sentences_file, n_train=9, n_dev=0, n_test=0,
                  dictionary=str(words), synth=sine_synth, voices=INVENTORY, log=lambda m: None)


def test_interrupted_subset_resumes_without_redoing_finished_utterances(tmp_path, sentences_file):
    root = tmp_path / "LS"
    kw = dict(n_train=12, n_dev=0, n_test=0, nj=1, log=lambda m: None)
    CALLS.clear()
    CALLS["fail_at"] = 5
    with pytest.raises(StepError, match="1 of 12 utterances.*failed.*rerun"):
        tts.build(tmp_path / "w", root, sentences_file, synth=counting_synth, voices=INVENTORY, **kw)
    subset = root / "train-tts"
    assert not (subset / tts.COMPLETE_FILE).exists()
    assert not list(subset.glob("*/*/*.trans.txt"))             # written only at the end
    assert len(list(subset.glob("*/*/*.flac"))) == 11
    leftover = next(subset.glob("*/*/*.flac")).with_name(".x.flac.tmp-99999")
    leftover.write_bytes(b"half a file")                         # as a killed worker leaves it
    CALLS.clear()
    tts.build(tmp_path / "w", root, sentences_file, synth=counting_synth, voices=INVENTORY, **kw)
    assert CALLS["n"] == 1                                       # only the missing one
    assert not leftover.exists()
    check_librispeech_subset(subset, 12)
    summary = json.loads((subset / tts.COMPLETE_FILE).read_text())
    assert summary["utterances"] == 12 and summary["hours"] > 0
    # complete: a rerun touches nothing; other settings need --force
    tts.build(tmp_path / "w", root, sentences_file, synth=refusing_synth, voices=INVENTORY, **kw)
    with pytest.raises(StepError, match="seed differ.*--force"):
        tts.build(tmp_path / "w", root, sentences_file, synth=sine_synth, voices=INVENTORY, seed=2,
                  **{**kw, "log": lambda m: None})
    tts.build(tmp_path / "w", root, sentences_file, synth=sine_synth, voices=INVENTORY, seed=2, force=True, **kw)
    check_librispeech_subset(subset, 12)


def test_custom_subset_names(tmp_path, sentences_file):
    tts.build(tmp_path / "w", tmp_path / "R", sentences_file, n_train=3, n_dev=2, n_test=0, nj=1,
              names={"train": "train-clean-5", "dev": "dev-clean-2"}, synth=sine_synth, voices=INVENTORY,
              log=lambda m: None)
    assert sorted(p.name for p in (tmp_path / "R").iterdir()) == ["dev-clean-2", "train-clean-5"]


# --- error messages ----------------------------------------------------------------------

def test_too_few_sentences_is_explained(tmp_path, sentences_file):
    with pytest.raises(StepError, match=r"has 60 usable sentences.*--n-train \+ --n-dev"):
        tts.build(tmp_path / "w", tmp_path / "R", sentences_file, n_train=100, synth=sine_synth, voices=INVENTORY,
                  log=lambda m: None)


def test_missing_sentence_file_is_named(tmp_path):
    with pytest.raises(StepError, match="--sentences .*nope.txt: no such file"):
        tts.build(tmp_path / "w", tmp_path / "R", tmp_path / "nope.txt", synth=sine_synth, voices=INVENTORY)


@pytest.mark.parametrize("flags, error", [
    (["--engine-weights", "flite=lots"], "--engine-weights: 'flite=lots': weight 'lots' is not a number"),
    (["--engines", "espeak-ng,mbrola"], "--engines espeak-ng,mbrola: give some of"),
    (["--dictionary", "/nope/words"], "--dictionary /nope/words: no such file"),
    (["--exclude", "/nope/dev.en"], "--exclude /nope/dev.en: no such file"),
    (["--voices", "festival:cmu_us_slt_arctic_hts"], "--voices festival:cmu_us_slt_arctic_hts: CMU ARCTIC slt"),
])
def test_command_line_mistakes_are_named(tmp_path, sentences_file, flags, error, capsys):
    assert tts.main(["--workdir", str(tmp_path / "w"), "--root", str(tmp_path / "R"),
                     "--sentences", str(sentences_file), *flags]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and error in err and "Traceback" not in err
    assert not (tmp_path / "R").exists()


def test_weights_that_leave_out_every_engine_present_are_named(tmp_path, sentences_file):
    with pytest.raises(StepError, match="--engine-weights .*give no share to any of the voices' engines"):
        tts.build(tmp_path / "w", tmp_path / "R", sentences_file, n_train=4, n_dev=0, n_test=0,
                  engines=["flite"], weights={"espeak-ng": 1.0}, synth=sine_synth, voices=INVENTORY,
                  log=lambda m: None)


def test_missing_apt_tools_says_what_to_do(tmp_path, sentences_file, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))                  # no apt-get, no dpkg
    assert tts.main(["--workdir", str(tmp_path / "w"), "--root", str(tmp_path / "R"),
                     "--sentences", str(sentences_file), "--n-train", "3", "--n-dev", "1",
                     "--n-test", "1"]) == 2
    msg = capsys.readouterr().err
    assert "apt-get" in msg and "dpkg" in msg and "TTS_ROOT=" in msg


# --- real engines (network to the Debian mirror) -----------------------------------------

@pytest.mark.slow
@pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt-get and dpkg")
def test_real_synthesis_with_the_unpacked_debian_engines(tmp_path, sentences_file):
    root = tmp_path / "LibriSpeech"
    out = tts.build(tmp_path / "w", root, sentences_file, n_train=12, n_dev=3, n_test=3, nj=2,
                    log=print)
    for kind, n in (("train", 12), ("dev", 3), ("test", 3)):
        check_librispeech_subset(root / f"{kind}-tts", n)
        assert out[kind]["hours"] * 3600 > 0.8 * n              # real speech, > 0.8 s each
    assert set(out["train"]["engines"]) == {"espeak-ng", "espeak", "flite", "festival"}
    assert set(out["dev"]["engines"]) == {"espeak-ng", "espeak", "flite"}
    assert "festival" in out["test"]["engines"]
    for flac in root.glob("*/*/*/*.flac"):
        audio, _ = sf.read(str(flac))
        assert np.sqrt(np.mean(audio ** 2)) > 0.003               # not silence
    speakers = " ".join((root / k / "SPEAKERS.txt").read_text() for k in ("train-tts", "dev-tts", "test-tts"))
    assert "slt" not in speakers
