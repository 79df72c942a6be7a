"""A ring buffer of weighted samples for re-use in training.

Each stored sample keeps what the losses need to re-evaluate it under the *current* model
without calling the integrand again: the flow-space point ``u`` (the VEGAS pre-image), its
channel, the integrand in u-space ``g = f / q_vegas``, the log-density ``log_q_sample`` it was
drawn with (importance correction), the VEGAS log-density ``log_qv`` of its x (for the density of the
grid-bypassing defensive share), and the prior channel weights / features of the point.
"""
from __future__ import annotations

import torch
from torch import Tensor


class SampleBuffer:
    """Fixed-capacity FIFO buffer of tensors sharing the leading (sample) dimension."""

    FIELDS = ("u", "channel", "g", "log_q_sample", "log_qv", "prior", "features")

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self.data: dict[str, Tensor | None] = {}
        self.size = 0
        self.pos = 0

    def store(self, **batch: Tensor | None) -> None:
        """Append a batch (overwriting the oldest samples when full)."""
        n = batch["u"].shape[0]
        if n == 0 or self.capacity == 0:
            return
        if n > self.capacity:
            batch = {k: (None if v is None else v[-self.capacity:]) for k, v in batch.items()}
            n = self.capacity
        if not self.data:
            for k, v in batch.items():
                self.data[k] = None if v is None else torch.empty((self.capacity, *v.shape[1:]), dtype=v.dtype,
                                                                  device=v.device)
        idx = (self.pos + torch.arange(n, device=batch["u"].device)) % self.capacity
        for k, v in batch.items():
            if v is not None and self.data.get(k) is not None:
                self.data[k][idx] = v.detach()
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, n: int, generator: torch.Generator) -> dict[str, Tensor | None]:
        """``n`` stored samples drawn uniformly with replacement."""
        device = self.data["u"].device
        idx = torch.randint(0, self.size, (n,), generator=generator, device=device)
        return {k: (None if v is None else v[idx]) for k, v in self.data.items()}

    def filter(self, keep: Tensor) -> None:
        """Keep only samples whose channel is marked in ``keep`` (bool ``[k]``), e.g. after dropping channels."""
        if self.size == 0:
            return
        mask = keep[self.data["channel"][: self.size]]
        n = int(mask.sum())
        for k, v in self.data.items():
            if v is not None:
                v[:n] = v[: self.size][mask].clone()
        self.size = n
        self.pos = n % self.capacity
