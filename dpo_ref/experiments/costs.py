"""What training costs: wall and CPU time per stage, and the state each pipeline holds.

:class:`StageTimer` times named stages of a run (and, on a GPU, their peak CUDA
memory); :func:`rlhf_against_dpo` turns those times and the models' parameter counts
into one DPO run against one RLHF pipeline (a reward model, then PPO), as the
sentiment world reports it in ``sentiment_cost.json``. Times vary between runs and
machines; every other number is computed from parameter counts.
"""

from __future__ import annotations

import resource
import time

import torch

from dpo_ref.methods import DPO, PPO

__all__ = ["StageTimer", "n_params", "model_sizes", "state_bytes", "peak_rss_bytes", "rlhf_against_dpo"]


class StageTimer:
    """Wall-clock and CPU seconds per named stage and, on a GPU, the stage's peak CUDA memory.

    Both are reported, never part of the deterministic numbers. The CUDA peak is
    ``torch.cuda.max_memory_allocated`` after resetting it at the start of the stage,
    so it measures what the stage itself held; the largest over repeated stages is kept.
    """

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds: dict[str, float] = {}
        # CPU seconds of this process (time.process_time): on a machine shared with other
        # jobs it varies far less than wall time, so it is the fairer cost on CPU.
        self.cpu_seconds: dict[str, float] = {}
        self.peak_cuda_bytes: dict[str, int] = {}

    def __call__(self, name: str):
        timer = self
        cuda = self.device.type == "cuda"

        class _Stage:
            def __enter__(self):
                if cuda:
                    torch.cuda.synchronize(timer.device)
                    torch.cuda.reset_peak_memory_stats(timer.device)
                self.start, self.cpu_start = time.perf_counter(), time.process_time()

            def __exit__(self, *exc):
                if cuda:
                    torch.cuda.synchronize(timer.device)
                    peak = torch.cuda.max_memory_allocated(timer.device)
                    timer.peak_cuda_bytes[name] = max(peak, timer.peak_cuda_bytes.get(name, 0))
                timer.seconds[name] = timer.seconds.get(name, 0.0) + time.perf_counter() - self.start
                timer.cpu_seconds[name] = timer.cpu_seconds.get(name, 0.0) + time.process_time() - self.cpu_start

        return _Stage()


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def state_bytes(n: int, dtype=torch.float32) -> int:
    """Bytes of ``n`` numbers of ``dtype``."""
    return n * torch.empty((), dtype=dtype).element_size()


def model_sizes(reference: torch.nn.Module, reward_model: torch.nn.Module) -> dict[str, int]:
    """Parameter counts of the models of both pipelines: the policy (a copy of pi_ref), PPO's critic, the reward model."""
    return {
        "policy": n_params(reference),
        # a separate copy of the policy's transformer with a scalar head (dpo_ref.train.ppo.ValueHeadModel)
        "critic": n_params(reference.base_model) + reference.config.hidden_size + 1,
        "reward_model": n_params(reward_model),
    }


def peak_rss_bytes() -> int:
    """The largest resident memory this process has held so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rlhf_against_dpo(
    cfg,
    sizes: dict[str, int],
    seconds: dict[str, float],
    cpu_seconds: dict[str, float],
    *,
    n_pairs: int,
    ppo_samples: int,
    peak_rss: int,
) -> dict:
    """What one DPO run and one RLHF run (reward model + PPO) hold and spend.

    ``sizes``: :func:`model_sizes`; ``seconds`` and ``cpu_seconds``: a :class:`StageTimer`'s, per stage;
    ``peak_rss``: the largest resident memory of the processes that ran the stages.
    """
    p_policy, p_critic, p_reward = sizes["policy"], sizes["critic"], sizes["reward_model"]
    adam = 2  # AdamW keeps two moments per trained parameter
    dpo_state = state_bytes(p_policy * (1 + 1 + adam))  # policy + grads + moments (reference log-probs precomputed)
    dpo_state_live = dpo_state + state_bytes(p_policy)  # + a live reference model
    trained_ppo = p_policy + p_critic
    ppo_state = state_bytes(trained_ppo * (1 + 1 + adam) + p_policy + p_reward)  # + reference + reward model
    rm_state = state_bytes(p_reward * (1 + 1 + adam))
    n_dpo, n_ppo = len(cfg.grids[DPO]), len(cfg.grids[PPO])

    def per_run(seconds: dict) -> tuple[float, float, float]:
        dpo = seconds.get(DPO, 0.0) / n_dpo + seconds.get("dpo_reference_logps", 0.0)
        ppo = seconds.get(PPO, 0.0) / n_ppo
        return dpo, ppo, seconds.get("reward_model", 0.0) + ppo

    dpo_wall, ppo_wall, rlhf_wall = per_run(seconds)
    dpo_cpu, ppo_cpu, rlhf_cpu = per_run(cpu_seconds)
    pair_samples = cfg.world.samples_per_prompt * cfg.world.n_train_prompts
    return {
        "memory_measure": "bytes of float32 state held during training: parameters of every model in memory, "
        "plus gradients and AdamW's two moments of the trained one (computed, not sampled)",
        DPO: {
            "models_in_memory": 1,
            "models_in_memory_note": "policy only: reference log-probs precomputed once (2 with a live reference)",
            "state_bytes": dpo_state,
            "state_bytes_live_reference": dpo_state_live,
            "training_runs": 1,
            "samples_generated": pair_samples,
            "wall_time_s": dpo_wall,
            "cpu_time_s": dpo_cpu,
        },
        "rlhf": {
            "models_in_memory": 4,
            "models_in_memory_note": "policy, critic (a separate network), reference and reward model during PPO; "
            "the reward model is trained first, in its own run",
            "state_bytes": max(ppo_state, rm_state),
            "state_bytes_reward_model_run": rm_state,
            "state_bytes_ppo_run": ppo_state,
            "training_runs": 2,
            "samples_generated": pair_samples + ppo_samples,
            "wall_time_s": rlhf_wall,
            "wall_time_reward_model_s": seconds.get("reward_model", 0.0),
            "wall_time_ppo_s": ppo_wall,
            "cpu_time_s": rlhf_cpu,
            "cpu_time_reward_model_s": cpu_seconds.get("reward_model", 0.0),
            "cpu_time_ppo_s": ppo_cpu,
        },
        "ratios_rlhf_over_dpo": {
            "models_in_memory": 4 / 1,
            "state_bytes": max(ppo_state, rm_state) / dpo_state,
            "training_runs": 2 / 1,
            "samples_generated": (pair_samples + ppo_samples) / pair_samples,
            "wall_time": rlhf_wall / dpo_wall if dpo_wall else None,
            "cpu_time": rlhf_cpu / dpo_cpu if dpo_cpu else None,
        },
        "shared_by_both": {
            "sft_pretrain_wall_time_s": seconds.get("pretrain", 0.0),
            "pair_sampling_wall_time_s": seconds.get("pair_sampling", 0.0),
            "n_pairs": n_pairs,
        },
        "peak_rss_bytes_whole_process": peak_rss,
        "stage_wall_time_s": dict(seconds),
        "stage_cpu_time_s": dict(cpu_seconds),
    }
