"""CTC decoding (greedy, or prefix beam search) of a speech_to_text subset, written as
fairseq-generate writes it.

    python -m sigma_plugin.asr.decode_ctc DATA --path exp/x/checkpoint_avg.pt \
        --gen-subset dev-clean --results-path exp/x/decode/dev-clean [--max-tokens 40000] [--cpu] \
        [--decode-method greedy|beam] [--beam 5] [--lm-path lm.gz --lm-weight 0.5 --lm-token-bonus 1]

--decode-method greedy (default) keeps the best frame-by-frame path; beam runs a lexicon-free
CTC prefix beam search (sigma_plugin.decoding.ctc_beam) of width --beam, with --lm-path an n-gram LM
(sigma_plugin.asr.train_lm) fused into it: each token adds --lm-weight · ln P_LM + --lm-token-bonus
(--lm-path and --lm-weight are fairseq-generate's flags; --lm-weight defaults to 0 there).
Takes fairseq-generate's options (same parser). Works for sigma_s2t_ctc and for
sigma_s2t_transformer models trained with a CTC head (--sigma-ctc-weight > 0). Writes
``RESULTS_PATH/generate-SUBSET.txt`` with ``T-<i>`` (reference), ``H-<i>`` (pieces, score =
mean best-path log-probability per frame, base 2, for either method) and ``D-<i>`` (detokenized) lines, ``<i>``
being the row of the subset's manifest -- the format sigma_plugin.asr.score reads.
"""
import logging
import math
import os
import sys
from pathlib import Path
from typing import Iterator, List, Tuple

import torch

from fairseq import checkpoint_utils, options, tasks, utils
from fairseq.dataclass.utils import convert_namespace_to_omegaconf

import sigma_plugin
from sigma_plugin.util.atomic import atomic_path
from sigma_plugin.decoding.ctc_beam import ctc_beam_decode
from sigma_plugin.decoding.ctc_greedy import ctc_greedy_decode
from sigma_plugin.decoding.ngram_lm import NgramLM

DECODE_METHODS = ("greedy", "beam")

logger = logging.getLogger("sigma_plugin.asr.decode_ctc")


def ctc_head(model):
    encoder = getattr(model, "encoder", None)
    if encoder is None or getattr(encoder, "ctc_proj", None) is None or not hasattr(encoder, "ctc_output"):
        raise ValueError(f"{type(model).__name__} has no CTC output layer (encoder.ctc_proj): decode it with "
                         "fairseq-generate, or train with --sigma-ctc-weight > 0")
    return encoder


class CtcDecoder:
    """A CTC checkpoint and one subset (``--gen-subset``) of its data: ``emissions()`` runs the
    model batch by batch and yields each utterance's frame log-probabilities; ``best()`` decodes
    one utterance's; ``text()`` turns token ids into text."""

    def __init__(self, cfg):
        # Registers the models/criteria and allowlists fairseq's checkpoint classes. It cannot be left to
        # --user-dir: running this module imported the sigma_plugin package before fairseq (so its
        # __init__ could not register), and fairseq's utils.import_user_module skips a user dir whose
        # module is already in sys.modules.
        sigma_plugin.register()
        utils.import_user_module(cfg.common)
        self.use_cuda = torch.cuda.is_available() and not cfg.common.cpu
        task = tasks.setup_task(cfg.task)
        models, saved_cfg = checkpoint_utils.load_model_ensemble(utils.split_paths(cfg.common_eval.path), task=task)
        if len(models) != 1:
            raise ValueError(f"--path: CTC decoding takes one checkpoint, got {len(models)}")
        model = models[0]
        self.encoder = ctc_head(model)
        model.eval()
        if cfg.common.fp16:
            model.half()
        if self.use_cuda:
            model.cuda()
        self.subset = cfg.dataset.gen_subset
        task.load_dataset(self.subset, task_cfg=saved_cfg.task)
        self.dataset = task.dataset(self.subset)
        self.batches = task.get_batch_iterator(
            dataset=self.dataset, max_tokens=cfg.dataset.max_tokens or 40000, max_sentences=cfg.dataset.batch_size,
            max_positions=None, ignore_invalid_inputs=False, seed=cfg.common.seed,
            num_workers=cfg.dataset.num_workers)
        self.tgt_dict = task.target_dictionary
        self.bpe = task.build_bpe(cfg.bpe)
        self.blank = self.tgt_dict.bos()

    def emissions(self) -> Iterator[Tuple[int, torch.Tensor, str]]:
        """(manifest row, lprobs (T, V) float32 on the CPU, reference) for every utterance, one
        batch in memory at a time; raises if an utterance was left out."""
        seen = set()
        with torch.no_grad():
            for sample in self.batches.next_epoch_itr(shuffle=False):
                sample = utils.move_to_cuda(sample) if self.use_cuda else sample
                net_input = sample["net_input"]
                lprobs, lens = self.encoder.ctc_output(self.encoder(net_input["src_tokens"], net_input["src_lengths"]))
                lprobs = lprobs.float().cpu()
                for b, idx in enumerate(sample["id"].tolist()):
                    seen.add(idx)
                    yield idx, lprobs[:int(lens[b]), b], self.dataset.tgt_texts[idx]
        missing = set(range(len(self.dataset))) - seen
        if missing:
            raise RuntimeError(f"{self.subset}: {len(missing)} utterances were not decoded (e.g. index {min(missing)})")

    def best(self, lprobs: torch.Tensor, method: str = "greedy", beam: int = 5, lm=None, lm_weight: float = 0.0,
             lm_token_bonus: float = 0.0) -> List[int]:
        """The best token ids of one utterance's (T, V) frame scores."""
        frames, lens = lprobs.unsqueeze(1), torch.tensor([lprobs.shape[0]])
        if method == "beam":
            return ctc_beam_decode(frames, lens, self.blank, beam_size=beam, lm=lm, lm_weight=lm_weight,
                                   token_bonus=lm_token_bonus)[0]
        return ctc_greedy_decode(frames, lens, self.blank)[0]

    def text(self, hyp) -> Tuple[str, str]:
        """(pieces, detokenized text) of a token-id list."""
        pieces = self.tgt_dict.string(torch.tensor(hyp, dtype=torch.long))
        return pieces, (self.bpe.decode(pieces) if self.bpe else pieces)


def load_lm(lm_path: str, tgt_dict) -> NgramLM:
    lm = NgramLM.load(lm_path)
    if lm.vocab_size != len(tgt_dict):
        raise ValueError(f"--lm-path {lm_path}: an LM over {lm.vocab_size} tokens, the model has {len(tgt_dict)} "
                         "(train it with this data folder's SentencePiece model)")
    return lm


def decode(cfg, method: str = "greedy", lm_token_bonus: float = 0.0) -> Path:
    if method not in DECODE_METHODS:
        raise ValueError(f"--decode-method must be one of {', '.join(DECODE_METHODS)}, got {method!r}")
    beam = int(cfg.generation.beam)
    if method == "beam" and beam < 1:
        raise ValueError(f"--beam must be >= 1, got {beam}")
    lm_path, lm_weight = cfg.generation.lm_path, float(cfg.generation.lm_weight or 0.0)
    if lm_path and method != "beam":
        raise ValueError("--lm-path needs --decode-method beam")
    ctc = CtcDecoder(cfg)
    lm = load_lm(lm_path, ctc.tgt_dict) if lm_path else None
    lines = {}
    for idx, lprobs, ref in ctc.emissions():
        # mean best-path log-probability per frame, base 2
        score = float(lprobs.max(-1).values.sum()) / max(lprobs.shape[0], 1) / math.log(2)
        pieces, text = ctc.text(ctc.best(lprobs, method, beam, lm, lm_weight, lm_token_bonus))
        lines[idx] = f"T-{idx}\t{ref}\nH-{idx}\t{score}\t{pieces}\nD-{idx}\t{score}\t{text}\n"
    out = Path(cfg.common_eval.results_path) / f"generate-{ctc.subset}.txt"
    with atomic_path(out) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for idx in sorted(lines):
            f.write(lines[idx])
    lm_note = f", LM {lm_path} weight {lm_weight} bonus {lm_token_bonus}" if lm is not None else ""
    logger.info(f"{ctc.subset}: decoded {len(lines)} utterances ({method}"
                f"{f', beam {beam}' if method == 'beam' else ''}{lm_note}) -> {out}")
    return out


def main(argv=None) -> int:
    logging.basicConfig(level=logging.INFO, force=True,
                        format="%(asctime)s | %(levelname)s | %(name)s | %(message)s")
    parser = options.get_generation_parser()
    parser.add_argument("--decode-method", choices=DECODE_METHODS, default="greedy",
                        help="greedy (default) or beam: CTC prefix beam search of width --beam")
    # --lm-path and --lm-weight are fairseq-generate's own (here: an n-gram LM of train_lm)
    parser.add_argument("--lm-token-bonus", type=float, default=0.0,
                        help="with --lm-path: score added per emitted token (default 0)")
    args = options.parse_args_and_arch(parser, input_args=argv)
    if not args.results_path:
        parser.error("--results-path is required")
    if not args.path:
        parser.error("--path is required")
    method = args.decode_method
    if method == "beam" and args.beam < 1:
        parser.error(f"--beam must be >= 1, got {args.beam}")
    if args.lm_path and method != "beam":
        parser.error("--lm-path needs --decode-method beam")
    if args.lm_path and not os.path.isfile(args.lm_path):
        parser.error(f"--lm-path {args.lm_path}: no such file")
    if args.lm_weight < 0:
        parser.error(f"--lm-weight must be >= 0, got {args.lm_weight}")
    decode(convert_namespace_to_omegaconf(args), method, args.lm_token_bonus)
    return 0


if __name__ == "__main__":
    sys.exit(main())
