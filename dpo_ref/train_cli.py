"""``dpo-ref train``: fine-tune a causal LM on a preference file with one method.

Examples::

    dpo-ref train --data pairs.jsonl --method dpo --beta 0.1 --output-dir out/dpo
    dpo-ref train --data pairs.jsonl --model gpt2 --method ipo --beta 0.5 --device cuda --output-dir out/ipo
    dpo-ref train --data pairs.jsonl --method preferred-ft --output-dir out/sft

``--data`` is anything :func:`dpo_ref.data.load_preference_dataset` reads (a local JSONL or
Parquet file, a ``save_to_disk`` folder, or a hub name) with ``prompt``/``chosen``/
``rejected`` columns. ``--model tiny`` (the default) builds a tiny GPT-2 and a BPE
tokenizer trained on the data itself, so the command runs offline in seconds. The
trained model and tokenizer are saved with ``save_pretrained`` to ``--output-dir``,
with ``history.json`` (the logged metrics); checkpoints go to
``--output-dir/checkpoints`` and an interrupted run resumes from there.
"""

from __future__ import annotations

import argparse

# method -> (needs a reference model, one-line help)
METHODS = {
    "dpo": (True, "DPO (sigmoid loss), DPO paper eq. 7"),
    "cdpo": (True, "conservative DPO: DPO with --label-smoothing"),
    "robust": (True, "robust DPO (unbiased under label noise), with --label-smoothing"),
    "ipo": (True, "IPO, squared loss with target 1/(2 beta); per-token mean log-ratios as in TRL"),
    "hinge": (True, "SLiC-style hinge on the implicit-reward margin"),
    "simpo": (False, "SimPO: length-normalised reward, margin --gamma, no reference"),
    "orpo": (False, "ORPO: SFT plus --lam times the odds-ratio loss, no reference"),
    "unlikelihood": (False, "likelihood on chosen, token unlikelihood (--alpha) on rejected"),
    "preferred-ft": (False, "SFT on the chosen completions"),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="preference data: JSONL/Parquet file, save_to_disk folder or hub name")
    parser.add_argument("--method", default="dpo", choices=sorted(METHODS), help="training objective")
    parser.add_argument("--model", default="tiny", help="causal LM: hub name, local folder, or 'tiny' (built here)")
    parser.add_argument("--output-dir", required=True, help="where the trained model, history and checkpoints go")
    parser.add_argument("--beta", type=float, default=0.1, help="KL strength (DPO paper default 0.1); SimPO's reward scale")
    parser.add_argument("--label-smoothing", type=float, default=0.0, help="label-flip rate for cdpo/robust")
    parser.add_argument("--gamma", type=float, default=1.0, help="SimPO target margin (paper: gamma/beta ~ 0.5)")
    parser.add_argument("--lam", type=float, default=0.1, help="ORPO odds-ratio weight (paper: ~0.1)")
    parser.add_argument("--alpha", type=float, default=1.0, help="unlikelihood weight")
    parser.add_argument("--steps", type=int, default=100, help="optimiser updates")
    parser.add_argument("--batch-size", type=int, default=8, help="pairs per update")
    parser.add_argument("--learning-rate", type=float, default=5e-5, help="AdamW learning rate")
    parser.add_argument("--warmup-steps", type=int, default=0, help="linear warm-up steps (DPO paper: 150)")
    parser.add_argument("--max-length", type=int, default=128, help="most tokens in prompt + completion")
    parser.add_argument("--checkpoint-every", type=int, default=50, help="save a checkpoint every this many steps")
    parser.add_argument("--seed", type=int, default=0, help="seeds the model (tiny), the batch order")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto picks CUDA when available")
    parser.add_argument("--split", default="train", help="dataset split (hub datasets)")


def main(args: argparse.Namespace) -> int:
    import functools
    import json
    from pathlib import Path

    import torch

    from dpo_ref import data as data_mod
    from dpo_ref import losses
    from dpo_ref.models import load_causal_lm, load_tokenizer, save_pretrained, tiny_bpe_tokenizer, tiny_gpt2
    from dpo_ref.train import (
        PairwiseObjective,
        ReferenceFreeObjective,
        SFTObjective,
        TrainConfig,
        Trainer,
        TensorBatches,
        UnlikelihoodObjective,
        chosen_as_sft,
        precompute_reference_logps,
        resolve_device,
    )

    if args.beta <= 0:
        raise ValueError(f"--beta must be positive, got {args.beta}")
    dataset = data_mod.load_preference_dataset(args.data, split=args.split)
    if args.model == "tiny":
        texts = [r["prompt"] + r["chosen"] for r in dataset] + [r["rejected"] for r in dataset]
        tokenizer = tiny_bpe_tokenizer(texts)
        torch.manual_seed(args.seed)
        model = tiny_gpt2(
            len(tokenizer),
            n_positions=args.max_length,
            seed=args.seed,
            eos_token_id=tokenizer.eos_token_id,
            bos_token_id=tokenizer.bos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    else:
        tokenizer = load_tokenizer(args.model)
        model = load_causal_lm(args.model)
    tokenized, report = data_mod.tokenize_pairs(dataset, tokenizer, max_length=args.max_length)
    pairs = data_mod.collate_pairs(list(tokenized), tokenizer.pad_token_id)
    print(f"{report.n_kept} pairs ({report.n_examples - report.n_kept} dropped, {report.n_truncated} truncated)")

    needs_reference, _ = METHODS[args.method]
    device = resolve_device(args.device)
    b = args.beta
    objectives = {
        "dpo": lambda: PairwiseObjective(functools.partial(losses.dpo_loss, beta=b), beta=b),
        "cdpo": lambda: PairwiseObjective(
            functools.partial(losses.dpo_loss, beta=b, label_smoothing=args.label_smoothing), beta=b
        ),
        "robust": lambda: PairwiseObjective(
            functools.partial(losses.robust_dpo_loss, beta=b, label_smoothing=args.label_smoothing), beta=b
        ),
        "ipo": lambda: PairwiseObjective(functools.partial(losses.ipo_loss, beta=b), beta=b, reduction="mean"),
        "hinge": lambda: PairwiseObjective(functools.partial(losses.hinge_loss, beta=b), beta=b),
        "simpo": lambda: ReferenceFreeObjective(functools.partial(losses.simpo_loss, beta=b, gamma=args.gamma), beta=b),
        "orpo": lambda: ReferenceFreeObjective(lambda c, r: losses.orpo_loss(c, r, -c, lam=args.lam), beta=args.lam),
        "unlikelihood": lambda: UnlikelihoodObjective(alpha=args.alpha),
        "preferred-ft": lambda: SFTObjective(),
    }
    objective = objectives[args.method]()
    if args.method == "preferred-ft":
        pairs = chosen_as_sft(pairs)
    elif needs_reference:
        # the reference is the starting model; one pass over the data, then it can go
        reduction = objective.reduction
        pairs = precompute_reference_logps(model, pairs, batch_size=args.batch_size, reduction=reduction, device=device)

    out = Path(args.output_dir)
    config = TrainConfig(
        steps=args.steps,
        batch_size=min(args.batch_size, len(next(iter(pairs.values())))),
        learning_rate=args.learning_rate,
        warmup_steps=args.warmup_steps,
        seed=args.seed,
        device=str(device),
        checkpoint_dir=str(out / "checkpoints"),
        checkpoint_every=args.checkpoint_every,
        log_every=max(1, args.steps // 20),
    )

    def report_step(step: int, record: dict) -> None:
        shown = {k: round(v, 4) for k, v in record.items() if k in ("loss", "rewards/margins", "rewards/accuracies")}
        print(f"step {step}/{args.steps} {shown}", flush=True)

    batches = TensorBatches(pairs, config.batch_size, config.seed)
    result = Trainer(model, objective, batches, config, on_step=report_step).fit()
    save_pretrained(result.model, tokenizer, out)
    (out / "history.json").write_text(json.dumps(result.history, indent=1))
    print(f"saved to {out}")
    return 0
