"""``dpo-ref train``: fine-tune a causal LM on a preference file with one method.

Examples::

    dpo-ref train --data pairs.jsonl --method dpo --beta 0.1 --output-dir out/dpo
    dpo-ref train --data pairs.jsonl --model gpt2 --method ipo --beta 0.5 --device cuda --output-dir out/ipo
    dpo-ref train --data pairs.jsonl --method preferred-ft --output-dir out/sft

``--data`` is anything :func:`dpo_ref.data.load_preference_dataset` reads (a local JSONL or
Parquet file, a ``save_to_disk`` folder, or a hub name) with ``prompt``/``chosen``/
``rejected`` columns. ``--method`` is any offline method of :mod:`dpo_ref.methods`; its
hyperparameters default to its paper's values (``--help`` lists them). ``--model tiny``
(the default) builds a tiny GPT-2 and a BPE tokenizer trained on the data itself, so the
command runs offline in seconds. The trained model and tokenizer are saved with
``save_pretrained`` to ``--output-dir``, with ``history.json`` (the logged metrics) and
``method.json`` (the method and the hyperparameters it ran with); checkpoints go to
``--output-dir/checkpoints`` and an interrupted run resumes from there.
"""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from dpo_ref.cli import int_at_least, output_folder
    from dpo_ref.methods import DPO, METHODS, OFFLINE_METHODS

    methods = "; ".join(f"{name}: {METHODS[name].summary}" for name in OFFLINE_METHODS)
    parser.add_argument(
        "--data", required=True, help="preference data: JSONL/Parquet file, save_to_disk folder or hub name"
    )
    parser.add_argument("--method", default=DPO, choices=OFFLINE_METHODS, help=f"training objective ({methods})")
    parser.add_argument("--model", default="tiny", help="causal LM: hub name, local folder, or 'tiny' (built here)")
    parser.add_argument(
        "--output-dir", required=True, type=output_folder, help="where the trained model, history and checkpoints go"
    )
    # One flag per hyperparameter name of the registry; unset means the method's paper default.
    seen: dict[str, list[str]] = {}
    for name in OFFLINE_METHODS:
        for h in METHODS[name].hyperparameters:
            seen.setdefault(h.name, []).append(f"{name} {h.default:g}")
    for hyper, defaults in seen.items():
        parser.add_argument(
            "--" + hyper.replace("_", "-"), type=float, default=None, help=f"default per method: {', '.join(defaults)}"
        )
    parser.add_argument("--steps", type=int, default=100, help="optimiser updates")
    parser.add_argument("--batch-size", type=int, default=8, help="pairs per update")
    parser.add_argument("--learning-rate", type=float, default=5e-5, help="AdamW learning rate")
    parser.add_argument("--warmup-steps", type=int, default=0, help="linear warm-up steps (DPO paper: 150)")
    parser.add_argument("--max-length", type=int_at_least(2), default=128, help="most tokens in prompt + completion")
    parser.add_argument("--checkpoint-every", type=int, default=50, help="save a checkpoint every this many steps")
    parser.add_argument("--seed", type=int, default=0, help="seeds the model (tiny), the batch order")
    parser.add_argument(
        "--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto picks CUDA when available"
    )
    parser.add_argument("--split", default="train", help="dataset split (hub datasets)")


def main(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from dpo_ref.methods import TrainingData, get_method
    from dpo_ref.runtime import resolve_device
    from dpo_ref.train import TensorBatches, TrainConfig, Trainer

    method = get_method(args.method)
    # every setting is checked before any data or model is loaded
    params = method.params(
        **{h.name: getattr(args, h.name, None) for h in method.hyperparameters}, **_flags_it_does_not_take(args, method)
    )
    out = Path(args.output_dir)
    device = resolve_device(args.device)
    config = TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        warmup_steps=args.warmup_steps,
        seed=args.seed,
        device=str(device),
        checkpoint_dir=str(out / "checkpoints"),
        checkpoint_every=args.checkpoint_every,
        log_every=max(1, args.steps // 20),
    )
    model, tokenizer, pairs = _model_and_pairs(args)
    # the reference is the starting model; its log-probs are computed once, then it can go
    data = TrainingData(
        pairs, reference=model, pad_token_id=tokenizer.pad_token_id, device=device, batch_size=args.batch_size
    )
    rows = data.rows_for(method)
    reference = _frozen_copy(model) if method.data == "unpaired" else None  # KTO runs it on mismatched rows
    objective = method.objective(reference=reference, **params)
    config.batch_size = min(config.batch_size, len(next(iter(rows.values()))))

    def report_step(step: int, record: dict) -> None:
        shown = {k: round(v, 4) for k, v in record.items() if k in ("loss", "rewards/margins", "rewards/accuracies")}
        print(f"step {step}/{args.steps} {shown}", flush=True)

    batches = TensorBatches(rows, config.batch_size, config.seed)
    result = Trainer(model, objective, batches, config, on_step=report_step).fit()
    from dpo_ref.models import save_pretrained

    save_pretrained(result.model, tokenizer, out)
    (out / "history.json").write_text(json.dumps(result.history, indent=1))
    (out / "method.json").write_text(json.dumps({"method": method.name, "params": params}, indent=1))
    print(f"saved to {out}")
    return 0


def _flags_it_does_not_take(args: argparse.Namespace, method) -> dict:
    """Hyperparameter flags given on the command line that ``method`` has no use for (an error)."""
    from dpo_ref.methods import METHODS

    own = {h.name for h in method.hyperparameters}
    every = {h.name for m in METHODS.values() for h in m.hyperparameters}
    return {name: getattr(args, name) for name in every - own if getattr(args, name, None) is not None}


def _model_and_pairs(args: argparse.Namespace):
    """The starting model, its tokenizer, and the data as padded pair tensors."""
    import torch

    from dpo_ref import data as data_mod
    from dpo_ref.models import load_causal_lm, load_tokenizer, tiny_bpe_tokenizer, tiny_gpt2

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
    return model, tokenizer, pairs


def _frozen_copy(model):
    import copy

    reference = copy.deepcopy(model).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    return reference
