"""Tiny data and fairseq-train settings for one model of each fairseq family, stock and as its
σReparam twin: translation (transformer, bart_base), language modelling (transformer_lm),
masked LM (roberta_base), speech-to-text (s2t_transformer_s, s2t_conformer), wav2vec 2.0
pre-training (wav2vec2) and CTC fine-tuning (wav2vec_ctc)."""
import glob
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

from _asr_corpus import prepare, write_corpus
from _toy_mt import BIN, USER_DIR, binarize, run, write_toy_corpus

TINY_ENC = ["--encoder-layers", "2", "--encoder-embed-dim", "32", "--encoder-ffn-embed-dim", "64",
            "--encoder-attention-heads", "2"]
TINY_DEC = ["--decoder-layers", "1", "--decoder-embed-dim", "32", "--decoder-ffn-embed-dim", "64",
            "--decoder-attention-heads", "2"]
W2V = ["--conv-feature-layers", "[(32,10,5),(32,3,2),(32,3,2)]", "--final-dim", "16", "--latent-vars", "8",
       "--conv-pos", "16", "--conv-pos-groups", "4"] + TINY_ENC
COMMON = ["--optimizer", "adam", "--lr", "1e-3", "--cpu", "--seed", "1", "--no-epoch-checkpoints",
          "--required-batch-size-multiple", "1", "--log-format", "json", "--log-interval", "1", "--num-workers", "0"]


@dataclass
class Family:
    arch: str
    data: str            # key of the data folders made by make_data
    task: List[str]
    model: List[str]
    criterion: str
    extra: List[str] = field(default_factory=list)
    entropy_key: str = "ent_enc_self_min"
    needs_w2v: bool = False  # --w2v-path to a stock wav2vec2 checkpoint

    def train_cmd(self, data: Dict[str, Path], save: Path, twin: bool, updates: int = 2, *more: str) -> List[str]:
        arch = ("sigma_" + self.arch) if twin else self.arch
        criterion = (self.criterion + "_with_sigma") if twin else self.criterion
        cmd = [str(BIN / "fairseq-train"), str(data[self.data]), *self.task, "--arch", arch, *self.model,
               "--criterion", criterion, *self.extra, *COMMON, "--max-update", str(updates), "--save-dir", str(save)]
        if self.needs_w2v:
            cmd += ["--w2v-path", str(data["w2v_stock"])]
        if twin:
            cmd += ["--user-dir", USER_DIR, "--sigma-log-interval", "1"]
        return cmd + list(more)


SPEECH = ["--task", "speech_to_text", "--train-subset", "train-tone", "--valid-subset", "dev-tone"]
FAMILIES = {
    "transformer": Family("transformer", "mt", ["--task", "translation"], TINY_ENC + TINY_DEC,
                          "label_smoothed_cross_entropy", ["--max-tokens", "500", "--share-all-embeddings"]),
    "bart_base": Family("bart_base", "mt", ["--task", "translation"], TINY_ENC + TINY_DEC,
                        "label_smoothed_cross_entropy", ["--max-tokens", "500"]),
    "transformer_lm": Family("transformer_lm", "lm", ["--task", "language_modeling", "--tokens-per-sample", "32"],
                             [a.replace("encoder", "decoder") for a in TINY_ENC], "cross_entropy",
                             ["--max-tokens", "512"], entropy_key="ent_dec_self_min"),
    "roberta_base": Family("roberta_base", "lm", ["--task", "masked_lm", "--tokens-per-sample", "32"], TINY_ENC,
                           "masked_lm", ["--max-tokens", "512"]),
    "s2t_transformer_s": Family("s2t_transformer_s", "asr", SPEECH, TINY_ENC + TINY_DEC + ["--conv-channels", "32"],
                                "label_smoothed_cross_entropy", ["--max-tokens", "3000"]),
    "s2t_conformer": Family("s2t_conformer", "asr", SPEECH, TINY_ENC + TINY_DEC + ["--conv-channels", "32"],
                            "label_smoothed_cross_entropy", ["--max-tokens", "3000"]),
    "wav2vec2": Family("wav2vec2", "w2v", ["--task", "audio_pretraining", "--max-sample-size", "16000",
                                           "--min-sample-size", "1000"], W2V + ["--num-negatives", "5",
                                                                                "--cross-sample-negatives", "0"],
                       "wav2vec", ["--infonce", "--max-tokens", "40000"]),
    "wav2vec_ctc": Family("wav2vec_ctc", "w2v", ["--task", "audio_finetuning", "--labels", "ltr"], [], "ctc",
                          ["--max-tokens", "40000", "--disable-validation"], needs_w2v=True),
}


def write_lm_text(folder: Path, n_train: int = 200, n_valid: int = 20, seed: int = 0) -> Path:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(50)]
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("valid", n_valid)):
        with open(folder / f"{split}.txt", "w") as f:
            for _ in range(n):
                f.write(" ".join(rng.choice(words) for _ in range(rng.randint(4, 12))) + "\n")
    dest = folder / "bin"
    run([str(BIN / "fairseq-preprocess"), "--only-source", "--trainpref", str(folder / "train.txt"),
         "--validpref", str(folder / "valid.txt"), "--destdir", str(dest), "--workers", "1"])
    return dest


def write_audio_manifest(raw: Path, dest: Path) -> Path:
    """wav2vec 2.0 manifests (train/valid .tsv) and letter targets (.ltr, dict.ltr.txt) of a
    LibriSpeech-layout folder."""
    import soundfile as sf
    dest.mkdir(parents=True, exist_ok=True)
    files = sorted(glob.glob(str(raw / "**" / "*.flac"), recursive=True))
    texts = {}
    for trans in glob.glob(str(raw / "**" / "*.trans.txt"), recursive=True):
        for line in open(trans, encoding="utf-8"):
            key, _, text = line.strip().partition(" ")
            texts[key] = text
    letters = set()
    for split, chosen in (("train", files), ("valid", files[:4])):
        with open(dest / f"{split}.tsv", "w") as tsv, open(dest / f"{split}.ltr", "w") as ltr:
            tsv.write(str(raw) + "\n")
            for path in chosen:
                tsv.write(f"{os.path.relpath(path, raw)}\t{sf.info(path).frames}\n")
                target = " ".join(texts[Path(path).stem].replace(" ", "|")) + " |"
                letters.update(target.split())
                ltr.write(target + "\n")
    (dest / "dict.ltr.txt").write_text("".join(f"{c} 1\n" for c in sorted(letters)))
    return dest


def make_data(root: Path) -> Dict[str, Path]:
    write_toy_corpus(root / "mt", n_train=120, n_valid=12)
    raw = write_corpus(root / "asr_raw")
    data = {"mt": binarize(root / "mt"), "lm": write_lm_text(root / "lm"),
            "asr": prepare(raw, root / "asr"), "w2v": write_audio_manifest(raw, root / "w2v")}
    w2v = FAMILIES["wav2vec2"]
    run(w2v.train_cmd(data, root / "w2v_stock", twin=False, updates=1))
    data["w2v_stock"] = root / "w2v_stock" / "checkpoint_last.pt"
    return data
