"""A toy translation corpus (reverse a sentence of w0..w39 tokens) and fairseq helpers for tests."""
import random
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
USER_DIR = str(ROOT / "sigma_plugin")
BIN = Path(sys.executable).parent


def write_toy_corpus(folder: Path, n_train=300, n_valid=30, seed=0):
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(40)]
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("valid", n_valid)):
        with open(folder / f"{split}.src", "w") as fs, open(folder / f"{split}.tgt", "w") as ft:
            for _ in range(n):
                s = [rng.choice(words) for _ in range(rng.randint(3, 10))]
                fs.write(" ".join(s) + "\n")
                ft.write(" ".join(reversed(s)) + "\n")


def binarize(folder: Path) -> Path:
    dest = folder / "bin"
    run([str(BIN / "fairseq-preprocess"), "--source-lang", "src", "--target-lang", "tgt",
         "--trainpref", str(folder / "train"), "--validpref", str(folder / "valid"),
         "--testpref", str(folder / "valid"), "--destdir", str(dest), "--joined-dictionary",
         "--workers", "1"])
    return dest


def run(cmd, **kw):
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if res.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res


def train_args(data, save_dir, *extra, max_update=6):
    return [str(BIN / "fairseq-train"), str(data), "--user-dir", USER_DIR, "--task", "translation",
            "--arch", "sigma_transformer_tiny", "--criterion", "label_smoothed_cross_entropy_with_sigma",
            "--label-smoothing", "0.1", "--optimizer", "sgd", "--lr", "0.1", "--momentum", "0.9",
            "--lr-scheduler", "fixed", "--max-tokens", "500", "--max-update", str(max_update),
            "--log-format", "json", "--log-interval", "2", "--sigma-log-interval", "2", "--cpu",
            "--save-dir", str(save_dir), "--no-epoch-checkpoints", "--share-all-embeddings",
            "--seed", "1", *extra]


def build_model(data, *extra):
    """Build task + model in-process exactly as fairseq-train would from these CLI args."""
    from fairseq import options, tasks
    from fairseq.utils import import_user_module
    import sigma_plugin
    sigma_plugin.register()  # sigma_plugin may have been imported before fairseq
    argv = [str(data), "--user-dir", USER_DIR, "--task", "translation", "--arch", "sigma_transformer_tiny",
            "--cpu", "--share-all-embeddings", *extra]
    parser = options.get_training_parser()
    args = options.parse_args_and_arch(parser, argv)
    import_user_module(args)
    task = tasks.setup_task(args)
    import torch
    torch.manual_seed(args.seed)  # as fairseq-train does before building
    return task, task.build_model(args), args


# English -> German word pairs of a software-messages flavour (umlauts and ß included).
LEXICON = [
    ("open", "öffnen"), ("save", "speichern"), ("close", "schließen"), ("delete", "löschen"),
    ("file", "Datei"), ("folder", "Ordner"), ("window", "Fenster"), ("settings", "Einstellungen"),
    ("user", "Benutzer"), ("password", "Passwort"), ("error", "Fehler"), ("warning", "Warnung"),
    ("the", "die"), ("new", "neue"), ("old", "alte"), ("selected", "ausgewählte"), ("all", "alle"),
    ("cannot", "kann nicht"), ("not", "nicht"), ("found", "gefunden"), ("network", "Netzwerk"),
    ("connection", "Verbindung"), ("server", "Server"), ("printer", "Drucker"), ("document", "Dokument"),
    ("image", "Bild"), ("size", "Größe"), ("name", "Name"), ("change", "ändern"), ("show", "anzeigen"),
    ("hide", "ausblenden"), ("search", "suchen"), ("replace", "ersetzen"), ("copy", "kopieren"),
    ("paste", "einfügen"), ("undo", "rückgängig"), ("help", "Hilfe"), ("about", "über"),
    ("program", "Programm"), ("version", "Version"), ("update", "Aktualisierung"), ("install", "installieren"),
    ("remove", "entfernen"), ("list", "Liste"), ("table", "Tabelle"), ("page", "Seite"), ("print", "drucken"),
    ("font", "Schrift"), ("color", "Farbe"), ("language", "Sprache"), ("keyboard", "Tastatur"),
    ("mouse", "Maus"), ("screen", "Bildschirm"), ("sound", "Ton"), ("volume", "Lautstärke"),
    ("battery", "Akku"), ("power", "Energie"), ("account", "Konto"), ("message", "Nachricht"),
    ("mail", "Post"), ("calendar", "Kalender"), ("contact", "Kontakt"), ("download", "herunterladen"),
]


def write_parallel_text(folder: Path, sizes, src="en", tgt="de", seed=0):
    """Word-by-word "translations" from LEXICON, 2-9 words a line: folder/SPLIT.{src,tgt} for
    each SPLIT -> number of lines in ``sizes``."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in sizes.items():
        pairs = [rng.choices(LEXICON, k=rng.randint(2, 9)) for _ in range(n)]
        (folder / f"{split}.{src}").write_text("".join(" ".join(e for e, _ in p) + "\n" for p in pairs),
                                               encoding="utf-8")
        (folder / f"{split}.{tgt}").write_text("".join(" ".join(d for _, d in p) + "\n" for p in pairs),
                                               encoding="utf-8")
    return folder
