"""Keras's optimizers with Keras's defaults, as torch optimizers.

``make("rmsprop", params)`` or ``RMSprop(learning_rate=1e-4)(params)``. Defaults are Keras 3's:
learning rate 1e-3 (SGD 0.01), epsilon 1e-7, RMSprop rho 0.9, AdamW weight decay 0.004.
RMSprop is Keras's update exactly (lr * g / sqrt(v + eps), torch puts eps outside the
root); Adam and the others are torch's, whose epsilon sits in a slightly different place
(docs/keras.md). Keras's gradient clipping options are hooks run before each step:
clipnorm (each tensor's norm), global_clipnorm (all together), clipvalue (each element).
"""
from __future__ import annotations

import torch


class KerasRMSprop(torch.optim.Optimizer):
    """Keras's RMSprop: v = rho v + (1 - rho) g^2; step = lr g / sqrt(v + eps) (with momentum: m = mu m + step)."""

    def __init__(self, params, lr=1e-3, rho=0.9, momentum=0.0, eps=1e-7, centered=False, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, rho=rho, momentum=momentum, eps=eps, centered=centered,
                                      weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else closure()
        for group in self.param_groups:
            lr, rho, mu, eps = group["lr"], group["rho"], group["momentum"], group["eps"]
            if not (mu or group["centered"] or group["weight_decay"]):   # the usual case, all tensors at once
                params = [p for p in group["params"] if p.grad is not None]
                grads = [p.grad for p in params]
                vs = [self.state[p].setdefault("v", torch.zeros_like(p)) for p in params]
                torch._foreach_mul_(vs, rho)
                torch._foreach_addcmul_(vs, grads, grads, value=1 - rho)
                denom = torch._foreach_add(vs, eps)
                torch._foreach_sqrt_(denom)
                torch._foreach_addcdiv_(params, grads, denom, value=-lr)
                continue
            for p in group["params"]:
                if p.grad is None:
                    continue
                g, state = p.grad, self.state[p]
                if "avg" not in state:
                    state.setdefault("v", torch.zeros_like(p))
                    state["avg"] = torch.zeros_like(p) if group["centered"] else None
                    state["m"] = torch.zeros_like(p) if mu else None
                if group["weight_decay"]:   # Keras 3's decoupled weight decay: p -= lr * wd * p
                    p.mul_(1 - lr * group["weight_decay"])
                v = state["v"].mul_(rho).addcmul_(g, g, value=1 - rho)
                denom = v + eps
                if state["avg"] is not None:
                    avg = state["avg"].mul_(rho).add_(g, alpha=1 - rho)
                    denom = denom - avg * avg
                step = g * lr / denom.sqrt()
                if state["m"] is not None:
                    step = state["m"].mul_(mu).add_(step)
                p.sub_(step)
        return loss


def _torch(cls, **fixed):
    return lambda params, **kw: cls(params, **{**fixed, **kw})


# name -> (factory(params, lr=..., **options), Keras's default learning rate, Keras's option -> torch's keyword)
OPTIMIZERS = {
    "rmsprop": (KerasRMSprop, 1e-3, {"rho": "rho", "momentum": "momentum", "epsilon": "eps",
                                     "centered": "centered", "weight_decay": "weight_decay"}),
    "adam": (_torch(torch.optim.Adam, eps=1e-7), 1e-3, {"beta_1": "beta1", "beta_2": "beta2", "epsilon": "eps",
                                                        "amsgrad": "amsgrad", "weight_decay": "weight_decay"}),
    "adamw": (_torch(torch.optim.AdamW, eps=1e-7, weight_decay=0.004), 1e-3,
              {"beta_1": "beta1", "beta_2": "beta2", "epsilon": "eps", "amsgrad": "amsgrad",
               "weight_decay": "weight_decay"}),
    "sgd": (_torch(torch.optim.SGD), 0.01, {"momentum": "momentum", "nesterov": "nesterov",
                                            "weight_decay": "weight_decay"}),
    "adagrad": (_torch(torch.optim.Adagrad, eps=1e-7, initial_accumulator_value=0.1), 1e-3,
                {"initial_accumulator_value": "initial_accumulator_value", "epsilon": "eps"}),
    "adadelta": (_torch(torch.optim.Adadelta, rho=0.95, eps=1e-7), 1e-3, {"rho": "rho", "epsilon": "eps"}),
    "adamax": (_torch(torch.optim.Adamax, eps=1e-7), 1e-3, {"beta_1": "beta1", "beta_2": "beta2", "epsilon": "eps"}),
    "nadam": (_torch(torch.optim.NAdam, eps=1e-7), 1e-3, {"beta_1": "beta1", "beta_2": "beta2", "epsilon": "eps"}),
}
CLIPPING = ("clipnorm", "clipvalue", "global_clipnorm")


class KerasOptimizer:
    """Keras's optimizer object (``optimizers.RMSprop(learning_rate=1e-4)``): a recipe made into a torch
    optimizer when the model's weights exist (at the first fit)."""

    def __init__(self, name: str, learning_rate: float | None = None, **options):
        if name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {name!r}; expected one of {sorted(OPTIMIZERS)}, a torch optimizer "
                             "or a callable params -> optimizer")
        factory, default_lr, names = OPTIMIZERS[name]
        for k in options:
            if k not in names and k not in CLIPPING:
                raise TypeError(f"{name} does not take {k!r}; it takes learning_rate, "
                                f"{', '.join(sorted(names) + list(CLIPPING))}")
        self.name, self.learning_rate, self.options = name, learning_rate or default_lr, options

    def get_config(self) -> dict:
        return {"name": self.name, "learning_rate": self.learning_rate, **self.options}

    def __call__(self, params) -> torch.optim.Optimizer:
        factory, _, names = OPTIMIZERS[self.name]
        kw = {}
        for k, v in self.options.items():
            if k in names:
                kw[names[k]] = v
        if "beta1" in kw or "beta2" in kw:
            kw["betas"] = (kw.pop("beta1", 0.9), kw.pop("beta2", 0.999))
        if kw.get("weight_decay") is None:
            kw.pop("weight_decay", None)
        opt = factory(list(params), lr=self.learning_rate, **kw)
        clip = {k: self.options.get(k) for k in CLIPPING if self.options.get(k) is not None}
        if clip:
            opt.register_step_pre_hook(lambda o, args, kwargs: clip_keras(o, **clip))
        return opt


def clip_keras(opt: torch.optim.Optimizer, clipnorm=None, clipvalue=None, global_clipnorm=None) -> None:
    grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
    if clipnorm is not None:   # Keras: each variable's gradient on its own
        for grad in grads:
            _clip_one(grad, clipnorm)
    if global_clipnorm is not None:
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        scale = (global_clipnorm / (norm + 1e-6)).clamp(max=1.0)
        for grad in grads:
            grad.mul_(scale)
    if clipvalue is not None:
        for grad in grads:
            grad.clamp_(-clipvalue, clipvalue)


def _clip_one(grad: torch.Tensor, max_norm: float) -> None:
    norm = torch.linalg.vector_norm(grad)
    grad.mul_((max_norm / (norm + 1e-6)).clamp(max=1.0))


def make(spec, params) -> torch.optim.Optimizer:
    """A torch optimizer from a Keras name, a KerasOptimizer, a torch optimizer or a callable."""
    if isinstance(spec, torch.optim.Optimizer):
        return spec
    if isinstance(spec, str):
        return KerasOptimizer(spec.lower())(params)
    return spec(params)


def RMSprop(learning_rate=0.001, **options) -> KerasOptimizer:
    return KerasOptimizer("rmsprop", learning_rate, **options)


def Adam(learning_rate=0.001, **options) -> KerasOptimizer:
    return KerasOptimizer("adam", learning_rate, **options)


def AdamW(learning_rate=0.001, **options) -> KerasOptimizer:
    return KerasOptimizer("adamw", learning_rate, **options)


def SGD(learning_rate=0.01, **options) -> KerasOptimizer:
    return KerasOptimizer("sgd", learning_rate, **options)


def Adagrad(learning_rate=0.001, **options) -> KerasOptimizer:
    return KerasOptimizer("adagrad", learning_rate, **options)


def Adadelta(learning_rate=0.001, **options) -> KerasOptimizer:
    return KerasOptimizer("adadelta", learning_rate, **options)


def Adamax(learning_rate=0.001, **options) -> KerasOptimizer:
    return KerasOptimizer("adamax", learning_rate, **options)


def Nadam(learning_rate=0.001, **options) -> KerasOptimizer:
    return KerasOptimizer("nadam", learning_rate, **options)
