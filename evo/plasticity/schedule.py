"""When each plasticity event happens between optimiser steps, and what it did.

Per step, in order: backward → (rewiring, which needs the dense gradient) →
masked optimiser step → CBP utility update → growth (when its trigger says)
→ pruning → CBP replacement. No structural event follows the last step: nothing
would train the changed network. All shape changes go through
:meth:`PlasticNet.apply`, so ages, utilities, ramps, masks and optimiser state
follow their units.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from evo.genome import parse_weight_name
from evo.network import as_inputs
from evo.operators.importance import layer_outputs
from evo.plasticity.config import PlasticityConfig
from evo.plasticity.growth import grow
from evo.plasticity.optim import zero_state
from evo.plasticity.pruning import prune_mature
from evo.plasticity.replacement import Replacer, fan_out_magnitude, reinitialise, update_utility
from evo.plasticity.rewiring import drop_fraction, layer_densities, random_mask, rewire
from evo.plasticity.state import PlasticNet, UnitChange
from evo.plasticity.triggers import make_trigger

__all__ = ["Schedule"]


class Schedule:
    """Runs the configured strategies at their intervals and records events and counts.

    Args:
        state: the training state the events change.
        data: the training set; a fixed random subset of ``growth.calibration_samples``
            is the calibration batch for GradMax, effective ranks and importance.
        total: the number of optimiser steps of this lifetime.
    """

    def __init__(
        self,
        state: PlasticNet,
        config: PlasticityConfig,
        data: tuple[Tensor, Tensor],
        total: int,
        gen: torch.Generator,
        rng: np.random.Generator,
    ) -> None:
        self.state, self.config, self.total, self.gen, self.rng = state, config, total, gen, rng
        x, y = data
        pick = torch.randperm(len(x), generator=gen)[: config.growth.calibration_samples]
        self.calibration = (as_inputs(x[pick]).cpu(), y[pick].cpu())
        self.trigger = make_trigger(config.growth)
        self.replacer = Replacer(config.replacement)
        self.events: list[str] = []
        self.counts = {"grown": 0, "pruned": 0, "replaced": 0, "rewired": 0}
        # What runs between steps, decided once: the hooks below run every step of every lifetime.
        self._rewires = config.rewiring.method in ("set", "rigl")
        self._replaces = config.replacement.strategy == "cbp"
        self._grows = config.growth.strategy != "none"
        self._prunes = config.pruning.strategy != "none"
        if config.rewiring.method != "none":
            self._init_masks()

    # ------------------------------------------------------------- rewiring
    def _init_masks(self) -> None:
        params = self.state.params
        names = {name: parse_weight_name(name) for name in params}
        shapes = {name: tuple(params[name].shape) for name, n in names.items() if n.group == "layers" and n.tensor == "weight"}
        densities = layer_densities(shapes, self.config.rewiring.density, self.config.rewiring.distribution)
        for name, shape in shapes.items():
            self.state.masks[name] = random_mask(shape, densities[name], self.gen).to(params[name].device)
        self.state.apply_masks()

    def before_update(self, step: int) -> None:
        """Between backward and the optimiser step: SET/RigL rewiring with the dense gradient."""
        if not self._rewires:
            return
        cfg = self.config.rewiring
        if not self._due(step, cfg.interval):
            return
        end = round(cfg.end_fraction * self.total)
        fraction = drop_fraction(cfg.method, cfg.drop_fraction, step + 1, end)
        if fraction <= 0:
            return
        params, moved = self.state.params, 0
        for name, mask in self.state.masks.items():
            param = params[name]
            grad = param.grad if cfg.method == "rigl" else None
            new_mask, born = rewire(param, mask, fraction, grad, self.gen)
            with torch.no_grad():
                param[born] = 0.0
            zero_state(self.state.optimizer, param, new_mask != mask)
            self.state.masks[name] = new_mask
            moved += int(born.sum())
        self.counts["rewired"] += moved
        self.events.append(f"step {step + 1}: {cfg.method} rewired {moved} weights (drop fraction {fraction:.3f})")

    # ------------------------------------------------------------- unit events
    def after_step(self, step: int, loss: float) -> None:
        """After the optimiser step: CBP utility, then growth, pruning and replacement when due."""
        if not (self._grows or self._prunes or self._replaces):
            return
        self.trigger.observe(loss)
        if self._replaces:
            self._update_utility()
        if step + 1 >= self.total:
            return
        if self._grows and self.trigger.due(step):
            self._grow(step)
        if self._prunes and self._due(step, self.config.pruning.interval):
            self._prune(step)
        if self._replaces and self._due(step, self.config.replacement.interval):
            self._replace(step)

    def _grow(self, step: int) -> None:
        genome = self.state.genome
        widths = {i: genome.layers[i].width for i in genome.hidden_layers}
        amounts = self.trigger.amounts(
            widths, lambda: layer_outputs(self.state.effective(), self.calibration[0], widths)
        )
        for layer, k in sorted(amounts.items()):
            k = min(k, self.config.max_width - widths[layer])
            if k < 1:
                continue
            g = self.config.growth
            grown, used = grow(
                self.state.current(), layer, k, g.strategy, self.rng, self.calibration, g.gradmax_scale, g.noise
            )
            index = torch.cat([torch.arange(widths[layer]), torch.full((k,), -1)])
            self.state.apply(UnitChange(layer, grown, index))
            self.counts["grown"] += k
            self.events.append(
                f"step {step + 1}: {used} grew layer {layer} by {k} ({widths[layer]}→{widths[layer] + k})"
            )

    def _prune(self, step: int) -> None:
        cfg = self.config.pruning
        for layer in self.state.genome.hidden_layers:
            width = self.state.genome.layers[layer].width
            result = prune_mature(
                self.state.current(),
                self.state.effective(),
                layer,
                self.state.age(layer),
                cfg,
                self.config.min_width,
                self.calibration,
            )
            if result is None:
                continue
            pruned, keep = result
            self.state.apply(UnitChange(layer, pruned, keep))
            self.counts["pruned"] += width - len(keep)
            self.events.append(
                f"step {step + 1}: pruned {width - len(keep)} units of layer {layer} by {cfg.criterion} "
                f"({width}→{len(keep)})"
            )

    def _update_utility(self) -> None:
        state, decay = self.state, self.config.replacement.decay
        params = state.params
        for layer, activity in state.activity.items():
            fan_out = fan_out_magnitude(params, state.genome, layer)
            state.utility[layer] = update_utility(state.utility[layer], activity, fan_out, decay)

    def _replace(self, step: int) -> None:
        state = self.state
        for layer in state.genome.hidden_layers:
            units = self.replacer.select(layer, state.utility[layer], state.age(layer))
            if len(units) == 0:
                continue
            index = torch.arange(state.genome.layers[layer].width)
            index[units] = -1
            state.apply(UnitChange(layer, reinitialise(state.current(), layer, units, self.gen), index))
            self.counts["replaced"] += len(units)
            self.events.append(f"step {step + 1}: cbp replaced {len(units)} units of layer {layer}")

    # ------------------------------------------------------------- helpers
    @staticmethod
    def _due(step: int, interval: int) -> bool:
        return (step + 1) % interval == 0

    def metrics(self) -> dict[str, float]:
        """Event counts, final hidden widths and (with masks) the density of the masked weights."""
        genome = self.state.genome
        widths = {f"width_{i}": float(genome.layers[i].width) for i in genome.hidden_layers}
        metrics = {**{k: float(v) for k, v in self.counts.items()}, **widths}
        if self.state.masks:
            active = sum(int(m.sum()) for m in self.state.masks.values())
            metrics["density"] = active / sum(m.numel() for m in self.state.masks.values())
        return metrics
