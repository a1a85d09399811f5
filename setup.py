from setuptools import find_packages, setup

setup(
    name="sigma_plugin",
    version="0.1.0",
    description="σReparam and attention-entropy tracking for deep fairseq Transformers (MT and ASR)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["sigma_plugin", "sigma_plugin.*"]),
    python_requires=">=3.10",
    install_requires=[
        # fairseq 0.12.2 does not build on Python 3.11 / torch 2.x; this distribution
        # provides the `fairseq` package with the fixes (install it with
        # --no-build-isolation after torch, see the Makefile).
        "fairseq-fixed==0.12.3.1",
        "torch>=2.6",
        "torchaudio",
        "sentencepiece",
        "sacrebleu>=2.0",
        "jiwer",
        "soundfile",
        "tabulate",  # sigma-inspect's tables
        "tensorboard",  # reading --tensorboard-logdir runs (EventAccumulator)
        "tensorboardX",
        "matplotlib",
        "pyyaml",
        "tqdm",
    ],
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": [
            "sigma-plot=sigma_plugin.cli.plot:main",
            "sigma-inspect=sigma_plugin.cli.inspect:main",
            "sigma-export=sigma_plugin.cli.export:main",
            "sigma-cpu-train=sigma_plugin.cli.cpu_train:main",
            "sigma-twin=sigma_plugin.cli.twin:main",
        ]
    },
)
