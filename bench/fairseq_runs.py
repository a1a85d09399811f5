"""Self-contained data and fairseq commands for the end-to-end benches (probe cost, wps, inference).

MT: a synthetic corpus (target = reversed source, 10-40 tokens a line, 1,000-word vocabulary),
binarized with fairseq-preprocess. ASR: synthetic tone "speech" (2-4 s a line, LibriSpeech
layout), prepared with sigma_plugin's own fbank and vocabulary steps. Each is built once under
WORK and reused (a .done marker)."""
from __future__ import annotations

import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import List, Sequence

ROOT = Path(__file__).resolve().parents[1]
USER_DIR = str(ROOT / "sigma_plugin")
BIN = Path(sys.executable).parent

# Model sizes of the end-to-end benches: small enough for 2 CPU cores, deep enough to be a Transformer.
MT_SIZE = ["--encoder-layers", "3", "--decoder-layers", "3", "--encoder-embed-dim", "256",
           "--decoder-embed-dim", "256", "--encoder-ffn-embed-dim", "1024", "--decoder-ffn-embed-dim", "1024",
           "--encoder-attention-heads", "4", "--decoder-attention-heads", "4", "--share-all-embeddings"]
ASR_SIZE = ["--encoder-layers", "6", "--encoder-embed-dim", "256", "--encoder-ffn-embed-dim", "1024",
            "--encoder-attention-heads", "4"]
ASR_TRAIN, ASR_VALID = "train-tone", "dev-tone"


def run(cmd: Sequence[str], **kw) -> subprocess.CompletedProcess:
    res = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({res.returncode}):\n"
                           f"{res.stdout[-2000:]}\n{res.stderr[-3000:]}")
    return res


def mt_data(work: Path, n_train: int = 6000, n_valid: int = 300, seed: int = 0) -> Path:
    """WORK/mt/bin: binarized synthetic translation data (train, valid = test)."""
    dest = Path(work) / "mt" / "bin"
    if (dest / ".done").exists():
        return dest
    raw = Path(work) / "mt" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for split, n in (("train", n_train), ("valid", n_valid)):
        src = [[f"w{rng.randrange(1000)}" for _ in range(rng.randint(10, 40))] for _ in range(n)]
        (raw / f"{split}.src").write_text("".join(" ".join(s) + "\n" for s in src))
        (raw / f"{split}.tgt").write_text("".join(" ".join(reversed(s)) + "\n" for s in src))
    shutil.rmtree(dest, ignore_errors=True)
    run([BIN / "fairseq-preprocess", "--source-lang", "src", "--target-lang", "tgt", "--trainpref", raw / "train",
         "--validpref", raw / "valid", "--testpref", raw / "valid", "--destdir", dest, "--joined-dictionary",
         "--workers", "1"])
    (dest / ".done").touch()
    return dest


def asr_data(work: Path, n_train: int = 400, n_valid: int = 20, seed: int = 0) -> Path:
    """WORK/asr/dump: fbank features, manifests, char vocabulary and config.yaml of tone speech."""
    import numpy as np
    import soundfile as sf
    dump = Path(work) / "asr" / "dump"
    if (dump / ".done").exists():
        return dump
    corpus = Path(work) / "asr" / "corpus"
    rng = random.Random(seed)
    words = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF", "HOTEL"]
    for subset, spk, n in ((ASR_TRAIN, "11", n_train), (ASR_VALID, "22", n_valid)):
        chap = corpus / subset / spk / "5"
        chap.mkdir(parents=True, exist_ok=True)
        lines = []
        for i in range(n):
            utt = f"{spk}-5-{i:04d}"
            t = np.arange(int(16000 * rng.uniform(2.0, 4.0))) / 16000
            sf.write(str(chap / f"{utt}.flac"), (0.3 * np.sin(2 * np.pi * (200 + 20 * (i % 30)) * t)).astype("float32"),
                     16000, format="FLAC", subtype="PCM_16")
            lines.append(f"{utt} {' '.join(rng.choice(words) for _ in range(rng.randint(4, 8)))}\n")
        (chap / f"{spk}-5.trans.txt").write_text("".join(lines))
    from sigma_plugin.asr.prep_fbank import prep_subset
    from sigma_plugin.asr.prep_vocab import prep_vocab
    shutil.rmtree(dump, ignore_errors=True)
    for subset in (ASR_TRAIN, ASR_VALID):
        prep_subset(corpus, subset, dump)
    prep_vocab(dump, [ASR_TRAIN], vocab_type="char", vocab_size=40)
    (dump / ".done").touch()
    return dump


def mt_train_cmd(data: Path, save_dir: Path, sigma: bool, max_update: int, log_interval: int,
                 *extra: str) -> List[str]:
    """fairseq-train: sigma_transformer (σReparam on all linears, its criterion with the default
    --sigma-log-interval) or stock transformer with stock label_smoothed_cross_entropy."""
    model = (["--user-dir", USER_DIR, "--arch", "sigma_transformer", "--criterion",
              "label_smoothed_cross_entropy_with_sigma"] if sigma else
             ["--arch", "transformer", "--criterion", "label_smoothed_cross_entropy"])
    return [str(BIN / "fairseq-train"), str(data), "--task", "translation", *model, *MT_SIZE,
            "--label-smoothing", "0.1", "--dropout", "0.1", "--optimizer", "adam", "--lr", "5e-4",
            "--lr-scheduler", "fixed", "--max-tokens", "2048", *_common(save_dir, max_update, log_interval), *extra]


def asr_train_cmd(dump: Path, save_dir: Path, sigma: bool, max_update: int, log_interval: int,
                  *extra: str) -> List[str]:
    """fairseq-train: sigma_s2t_ctc with σReparam on all linears/convs, or --sigma-reparam none."""
    return [str(BIN / "fairseq-train"), str(dump), "--user-dir", USER_DIR, "--task", "speech_to_text",
            "--config-yaml", "config.yaml", "--train-subset", ASR_TRAIN, "--valid-subset", ASR_VALID,
            "--arch", "sigma_s2t_ctc", *ASR_SIZE, "--sigma-reparam", "all" if sigma else "none",
            "--criterion", "sigma_ctc", "--optimizer", "adam", "--lr", "5e-4", "--lr-scheduler", "fixed",
            "--max-tokens", "6000", *_common(save_dir, max_update, log_interval), *extra]


def _common(save_dir, max_update, log_interval):
    # checkpoint only at the end (--save-interval beyond the run), no validation: wps is training only
    return ["--max-update", str(max_update), "--log-format", "json", "--log-interval", str(log_interval),
            "--disable-validation", "--save-interval", "100000", "--no-epoch-checkpoints",
            "--save-dir", str(save_dir), "--num-workers", "0", "--required-batch-size-multiple", "1",
            "--seed", "1", "--cpu"]
