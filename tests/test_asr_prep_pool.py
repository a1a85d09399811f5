"""prep_fbank's worker pool on its error paths: a wrong-rate file with several workers, many times
over, must end with the one-line error (never a hang) and leave no temporary file behind."""
import subprocess
import sys
import textwrap
from pathlib import Path

import soundfile as sf

from _asr_corpus import tone, write_chapter

ROOT = Path(__file__).resolve().parents[1]


def test_wrong_rate_with_four_workers_never_hangs_and_leaves_no_temp_files(tmp_path):
    # many results in transit when the error comes (early): the case where a pool used to hang
    utts = {f"{i:04d}": "A B" for i in range(120)}
    write_chapter(tmp_path / "train-r", "1", "1", utts, audio={n: tone(2.0, 300 + i) for i, n in enumerate(utts)})
    sf.write(str(tmp_path / "train-r" / "1" / "1" / "1-1-0002.flac"), tone(0.5, rate=8000), 8000,
             format="FLAC", subtype="PCM_16")
    script = textwrap.dedent(f"""
        import contextlib, io, pathlib, sys
        from sigma_plugin.asr.prep_fbank import main
        out = pathlib.Path({str(tmp_path / "out")!r})
        for i in range(20):
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                rc = main(["--root", {str(tmp_path)!r}, "--subsets", "train-r", "--out-dir", str(out), "--nj", "4"])
            assert rc == 2, (i, rc, err.getvalue()[-2000:])
            assert "1-1-0002.flac: sample rate 8000 Hz, expected 16000" in err.getvalue(), err.getvalue()[-2000:]
            left = sorted(p.name for p in out.iterdir()) if out.exists() else []
            assert left == [], (i, left)
            print("run", i, "ok", flush=True)
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=240)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]
    assert res.stdout.count(" ok") == 20
