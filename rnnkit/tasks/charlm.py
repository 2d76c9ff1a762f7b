"""character-level language model: learn a text, report bits per character, sample from it

One character in, the next character out (Karpathy's char-rnn), trained with
truncated BPTT over the text laid out as parallel contiguous streams, the
state carried from chunk to chunk. The last ``val_fraction`` of the text is
held out for validation. With no ``--text`` it trains on the CPython
documentation topics that ship with the standard library (pydoc_data).

The defaults were chosen by measurement (benchmarks/charlm.md): the lowest
validation loss a 2-core CPU reaches in the default time budget.
"""
from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, fields
from itertools import chain
from pathlib import Path

import torch
import torch.nn.functional as F

from ..data.streams import StreamBatches
from ..data.text import Vocabulary, read_text, read_texts
from ..errors import UserError
from ..models.charlm import RNN_LAYERS, CharLM, CharLMConfig, sample_next
from ..train import StepOutput, Trainer, TrainConfig, load_checkpoint, restore_model, seed_everything
from ..kernels import BACKENDS
from ..train.config import PRECISIONS
from ..train.dynamic import DynamicEvalConfig, dynamic_evaluate
from ..train.optim import BETA_2, beta_2_refusal
from .contract import TrainOptions, shared, warmup
from .options import check_declared, check_fits, check_memory, check_out_dir, option, resume_options

LN2 = math.log(2)
WARMUP = 20   # default linear warmup updates


@dataclass
class Options(TrainOptions):
    text: list[str] | None = option(None, "UTF-8 text files to learn (default: the Python documentation topics "
                                          "in the standard library)", "data", metavar="FILE")
    train: list[str] | None = option(None, "the same as --text (the name every task accepts)", "data", metavar="FILE")
    valid: str | None = shared("valid", None, "a text to validate on (default: the last val_fraction of the text)")
    val_fraction: float = shared("val_fraction", 0.1, "the last part of the text held out for validation")
    cell: str = option("auto", "recurrent cell (auto: the measured best, benchmarks/charlm.md: lstm, but gru for "
                               "budgets under 10 minutes in fp32)", "model",
                       choices=("auto",) + tuple(sorted(RNN_LAYERS)))
    hidden_size: int = option(512, "units per layer", "model", bounds="[1, 2**16]")
    num_layers: int = option(2, "stacked layers", "model", bounds="[1, 64]")
    embedding_dim: int = option(64, "size of the learned character embedding", "model", bounds="[0, 2**16]")
    onehot: bool = option(False, "one-hot characters in (the textbook form) instead of embeddings", "model")
    dropout: float | None = option(None, "dropout between layers and before the output (default: the measured best: "
                                         "0.25 for the lstm in bf16, 0.1 for the lstm in fp32, 0 for other cells)",
                                   "model", bounds="[0, 1)")
    recurrent_dropout: float = option(0.0, "variational dropout on the recurrent input", "model", bounds="[0, 1)")
    zoneout: float = option(0.0, "zoneout rate on the state", "model", bounds="[0, 1)")
    weight_dropout: float = option(0.0, "DropConnect on the recurrent matrices, one mask per batch (AWD-LSTM)",
                                   "model", bounds="[0, 1)")
    embedding_dropout: float = option(0.0, "drop whole characters' embeddings, one mask per batch", "model",
                                      bounds="[0, 1)")
    tie_weights: bool = option(False, "the output layer reuses the embedding matrix (after a projection to its "
                                      "size)", "model")
    backend: str = option("auto", "the recurrent layers' backend (auto: rnnkit's choice)", "model",
                          choices=("auto",) + BACKENDS)
    minutes: float | None = shared("minutes", 10.0)
    epochs: int = shared("epochs", 1000, "passes over the text, if the budget lasts")
    batch_size: int | None = shared("batch_size", None, "parallel streams per batch (default: the measured best: "
                                                        "32 for the lstm in bf16, else 64)")
    seq_len: int = option(100, "characters per chunk: truncated BPTT length (k1 = k2)", "training",
                          bounds="[1, 2**20]")
    shift: bool = option(False, "start each epoch's chunks at a random offset in [0, seq_len), so truncated BPTT "
                                "cuts the text at other characters every epoch", "training")
    optimizer: str = shared("optimizer", "adamw")
    lr: float = shared("lr", 5e-3)
    beta_2: float = option(BETA_2, "adam's and adamw's decay of the squared-gradient average", "training",
                           bounds="[0, 1)")
    weight_decay: float | None = shared("weight_decay", None, "decoupled weight decay of adamw (default: the "
                                                              "measured best: 0.1 for the lstm with adamw, else 0)")
    schedule: str = shared("schedule", "cosine")
    warmup_steps: int | None = shared("warmup_steps", None, f"linear warmup updates (default: {WARMUP}; none with "
                                                            "plateau)")
    clip_norm: float = shared("clip_norm", 1.0)
    precision: str = option("auto", "training arithmetic: bf16 autocasts the matrix products (weights stay fp32; "
                                    "1.6x the updates of the default LSTM on a CPU with AVX512-BF16, slower without); "
                                    "auto: bf16 where the CPU has native bf16, else fp32", "training",
                            choices=("auto",) + PRECISIONS)
    eval_every: int | None = shared("eval_every", None, "also evaluate every N updates (default: once per epoch)")
    seed: int = shared("seed", 0)
    out: str = shared("out", "runs/charlm")
    tensorboard: str | None = option(None, "also write TensorBoard logs (losses, metrics, learning rate, gradient "
                                           "norm, history plot) to this directory", "output", metavar="DIR",
                                     per_run=True)
    sample_length: int = option(400, "characters to generate at the end (0: none)", "output", bounds="[0, 2**20]",
                                per_run=True)
    temperature: float = option(0.8, "sampling temperature of the final sample (0: greedy)", "output",
                                bounds="[0, 100]", per_run=True)

    def __post_init__(self):
        super().__post_init__()   # validates every declared option (tasks/options.py)
        # the automatic choices are resolved here, so the checkpoint records them and a resumed run keeps them
        self.precision = resolve_precision(self.precision)
        if self.cell == "auto":
            self.cell = auto_cell(self.precision, self.minutes)
        if self.dropout is None:
            self.dropout = auto_dropout(self.cell, self.precision)
        if self.weight_decay is None:
            self.weight_decay = auto_weight_decay(self.cell, self.optimizer)
        if self.batch_size is None:
            self.batch_size = auto_batch_size(self.cell, self.precision)
        if self.text and self.train:
            raise UserError("pass the text as --text or as --train, not both")
        if why := beta_2_refusal(self.optimizer, self.beta_2):
            raise UserError(f"option {why}")
        if self.embedding_dim < 1 and not self.onehot:
            raise UserError("option embedding_dim must be positive (or pass --onehot)")
        if self.weight_dropout and self.cell in ("mingru", "minlstm"):
            raise UserError(f"option weight_dropout drops entries of a recurrent matrix, which the {self.cell} "
                            "cell does not have; use --recurrent-dropout")
        if self.backend != "auto":   # the layers' own check, at the door
            try:
                RNN_LAYERS[self.cell](8, input_size=8, backend=self.backend)
            except ValueError as e:
                raise UserError(f"option backend: {e}") from None
        if self.tie_weights and self.onehot:
            raise UserError("option tie_weights needs an embedding: leave out --onehot")
        if self.embedding_dropout and self.onehot:
            raise UserError("option embedding_dropout needs an embedding: leave out --onehot")

    @property
    def warmup(self) -> int:
        """The warmup updates this run uses."""
        return warmup(self, WARMUP)


def native_bf16() -> bool:
    """True where the CPU computes bfloat16 products natively (AVX512-BF16 or AMX on Linux's flag list)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str) -> str:
    """The arithmetic a run uses: "auto" is bf16 on a CPU with native bf16 (measured: benchmarks/charlm.md)."""
    if precision != "auto":
        return precision
    return "bf16" if native_bf16() else "fp32"


def auto_cell(precision: str, minutes: float | None) -> str:
    """The cell that wins the budget, as measured (benchmarks/charlm.md, fourth and fifth rounds): in bf16 the LSTM
    (ahead at 3 and at 10 minutes); in fp32 the GRU for budgets under 10 minutes (measured at 3, the README's run:
    1.109 against 1.129 for the LSTM with dropout 0.1) and the LSTM for 10 minutes or more (measured at 10: 1.441
    against 1.462 on one text, 1.461 against 1.490 on another), or with no time budget."""
    if precision == "bf16" or minutes is None or minutes >= 10:
        return "lstm"
    return "gru"


def auto_dropout(cell: str, precision: str) -> float:
    """The dropout measured best for a cell and arithmetic (benchmarks/charlm.md): the LSTM 0.25 in bf16 with its
    batches of 32 (seventh round: 1.392 against 1.415 for 0.3 with rnnkit's masks; with torch's, 1.405 against
    1.409 for 0.2, within the spread of single runs; 0.2 was best with batches of 64, against 0.1 and 0.3), 0.1
    in fp32 (against 0 and 0.2); the GRU none (against 0.1); other cells were not measured: none."""
    if cell == "lstm":
        return 0.25 if precision == "bf16" else 0.1
    return 0.0


def auto_batch_size(cell: str, precision: str) -> int:
    """Streams per batch as measured (benchmarks/charlm.md, seventh round): 32 for the LSTM in bf16 (with torch's
    dropout masks 1.409 against 1.417 and 1.419 for 64 on one text; with dropout 0.25 and rnnkit's masks 1.392
    and 1.408 on it, 1.444 against 1.445 on another); 64 otherwise (the GRU in fp32 with dropout 0.1 was worse
    with 32 in the first round, 1.467 against 1.453; the fp32 LSTM was not measured with 32)."""
    return 32 if cell == "lstm" and precision == "bf16" else 64


def auto_weight_decay(cell: str, optimizer: str) -> float:
    """AdamW's decoupled weight decay as measured (benchmarks/charlm.md, fifth round): 0.1 for the LSTM (1.417
    against 1.424 and 1.432 on one text in bf16, 1.445 against 1.450 on another, 1.439 against 1.441 in fp32);
    none for the GRU and other cells, and with other optimizers (not measured)."""
    return 0.1 if cell == "lstm" and optimizer == "adamw" else 0.0


def split_text(text: str, val_fraction: float, chunk: int) -> tuple[str, str]:
    """(train, validation): the last ``val_fraction`` of the text is validation."""
    n_val = int(len(text) * val_fraction)
    if len(text) - n_val < chunk + 1 or n_val < 2:
        raise UserError(f"the text has {len(text)} characters: too short for one training batch of {chunk} "
                        "characters (batch_size x seq_len, and seq_len - 1 more with --shift) plus a validation part; "
                        "pass a longer text or lower --batch-size / --seq-len")
    return text[:-n_val], text[-n_val:]


def eval_batches(ids: torch.Tensor) -> StreamBatches:
    """Up to 16 contiguous streams in chunks of 256: evaluation carries the state through the whole text."""
    return StreamBatches(ids, max(1, min(16, (len(ids) - 1) // 256)), 256)


def lm_step(model: CharLM):
    """The step function the trainer calls: next-character cross-entropy on a (B, T) chunk."""
    def step(batch, state):
        x, y = batch
        logits, state = model(x, state)                           # (B, T, V)
        loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())   # fp32 even under autocast
        return StepOutput(loss, state, n=y.numel())
    return step


def run(o: Options) -> int:
    o, trainer, model, vocab, val = fit(o)   # o: a resumed run's own options
    result = final_validation(trainer, val)
    print(f"validation: {result['loss']:.4f} nats/char, {result['bpc']:.4f} bits/char, perplexity "
          f"{result['perplexity']:.3f} after {trainer.global_step} updates "
          f"({trainer.elapsed / 60:.1f} min); checkpoints in {o.out}")
    if o.sample_length:
        print("sample:")
        sample = generate(model, vocab, prime="\n", length=o.sample_length, temperature=o.temperature, seed=o.seed)
        if trainer.tensorboard is not None:
            trainer.tensorboard.text("sample", sample)
    return 0


def fit(o: Options, callbacks=()) -> tuple[Options, Trainer, CharLM, Vocabulary, StreamBatches]:
    """Train as ``rnnkit train charlm`` does (``callbacks``: more Trainer callbacks, for benchmarks): the options
    the run used (a resumed run's own), the trainer, model, vocabulary and held-out batches."""
    resume = check_out_dir(o.out, o.resume, o.overwrite)   # before any work
    ck = None
    if resume is not None:   # the run's own options, model and vocabulary
        ck = load_checkpoint(resume)
        header_model(ck)
        o = resume_options(o, ck.config.get("options"), str(resume))
    seed_everything(o.seed)
    out = Path(o.out)
    text = read_texts(o.text or o.train or [])
    chunk = o.batch_size * o.seq_len + (o.seq_len - 1 if o.shift else 0)   # one batch, at any offset
    if o.valid:   # the user's validation text; all of the training text trains
        train_text, val_text = text, read_text(o.valid)
        if len(train_text) < chunk + 1 or len(val_text) < 2:
            raise UserError(f"the text has {len(train_text)} characters and the validation text {len(val_text)}: "
                            f"too short for one chunk of {chunk} characters (batch_size x seq_len"
                            f"{' + seq_len - 1 for --shift' if o.shift else ''}) and 2 to validate on")
    else:
        train_text, val_text = split_text(text, o.val_fraction, chunk)
    if ck is not None:
        config, vocab = header_model(ck)
    else:
        vocab = Vocabulary.build(train_text)
        config = CharLMConfig(len(vocab), o.cell, o.hidden_size, o.num_layers, 0 if o.onehot else o.embedding_dim,
                              o.dropout, o.recurrent_dropout, o.zoneout, o.weight_dropout, o.embedding_dropout,
                              o.tie_weights, o.backend)
    model = build_model(config, o.batch_size * o.seq_len)
    train = StreamBatches(vocab.encode(train_text), o.batch_size, o.seq_len, drop_last=True, shift=o.shift)
    val = eval_batches(vocab.encode(val_text))
    train_config = TrainConfig(
        epochs=o.epochs, max_steps=o.max_steps, max_minutes=o.minutes, optimizer=o.optimizer, lr=o.lr,
        beta_2=o.beta_2, weight_decay=o.weight_decay, schedule=o.schedule, warmup_steps=o.warmup, min_lr_ratio=0.05,
        clip_norm=o.clip_norm or None, precision=o.precision, stateful=True,
        eval_every=o.eval_every, loss_metrics=("perplexity", "bpc"), seed=o.seed, verbose=0 if o.quiet else 1,
        out_dir=str(out), tensorboard=o.tensorboard)
    files = o.text or o.train
    source = ", ".join(files) if files else "the Python documentation topics (pydoc_data, standard library)"
    print(f"charlm: {len(text):,} characters of {source}; {len(vocab)} symbols; "
          f"{sum(p.numel() for p in model.parameters()):,} parameters ({config.num_layers} x {config.hidden_size} "
          f"{config.cell}); backend {model.rnn.backend}, {train_config.precision}"
          + (" (the native kernel's recurrence stays float32)" if train_config.precision == "bf16" and
             model.rnn.backend == "native" else ""), file=sys.stderr)
    options = {k: v for k, v in asdict(o).items() if k not in ("resume", "overwrite")}
    trainer = Trainer(model, lm_step(model), train_config, callbacks=callbacks,
                      task_config={"task": "charlm", "model": config.to_dict(), "vocab": list(vocab.chars),
                                   "options": options})
    trainer.fit(train, val, resume=str(resume) if resume else None)
    return o, trainer, model, vocab, val


def build_model(config: CharLMConfig, batch_items: int = 1) -> CharLM:
    """The model, once its size is known to fit in memory (training ``batch_items`` characters at a time)."""
    check_memory(lambda: CharLM(config), activation_floats(config, batch_items),
                 "lower --hidden-size, --num-layers, --batch-size or --seq-len")
    return CharLM(config)


def activation_floats(config: CharLMConfig, batch_items: int) -> int:
    """The floats training keeps for the backward pass, ``batch_items`` characters at a time (an estimate)."""
    return batch_items * (config.num_layers * config.hidden_size * 8 + 3 * config.vocab_size)


def header_model(ck) -> tuple[CharLMConfig, Vocabulary]:
    """The model config and vocabulary of a charlm checkpoint, checked with the options' own declarations:
    a header from another task, tampered with or inconsistent is one UserError naming the problem."""
    path, header = ck.path, ck.config
    if not isinstance(header, dict) or header.get("task") != "charlm":
        task = header.get("task") if isinstance(header, dict) else None
        raise UserError(f"{path} is a checkpoint of task {task!r}, not of a charlm model")
    model, chars = header.get("model"), header.get("vocab")
    if not isinstance(model, dict) or not isinstance(chars, list):
        raise UserError(f"checkpoint {path} has a malformed charlm config (its model or vocab entry is missing)")
    if len(chars) < 2 or len(set(chars)) != len(chars) or not all(isinstance(c, str) and len(c) == 1
                                                                   for c in chars):
        raise UserError(f"checkpoint {path} has a malformed vocabulary: expected distinct single characters")
    known = {f.name for f in fields(CharLMConfig)}
    if set(model) - known or "vocab_size" not in model:
        raise UserError(f"checkpoint {path} has a malformed model config: unknown "
                        f"{sorted(set(model) - known)}, expected {sorted(known)}")
    check_declared(Options, model, f"in checkpoint {path}")
    if model.get("cell") not in RNN_LAYERS or model.get("dropout", 0.0) is None:   # "auto" / None: never resolved
        raise UserError(f"checkpoint {path} has a malformed model config: cell {model.get('cell')!r} and dropout "
                        f"{model.get('dropout')!r} must be a cell of {sorted(RNN_LAYERS)} and a rate")
    if model["vocab_size"] != len(chars):
        raise UserError(f"checkpoint {path} is inconsistent: vocab_size {model['vocab_size']!r} but a "
                        f"vocabulary of {len(chars)} characters")
    return CharLMConfig(**model), Vocabulary(tuple(chars))


def final_validation(trainer: Trainer, val) -> dict[str, float]:
    """The validation figures of the trained model: fit's last evaluation if it was at the last update."""
    last = trainer.history.rows[-1] if trainer.history.rows else {}
    if last.get("step") == trainer.global_step and "val_loss" in last:
        return {k[len("val_"):]: v for k, v in last.items() if k.startswith("val_")}
    return trainer.evaluate(val)


# ---- generation and evaluation from a checkpoint (rnnkit generate / rnnkit evaluate) -------------

def load_model(path: str) -> tuple[CharLM, Vocabulary]:
    """The language model and vocabulary saved in a charlm checkpoint."""
    if not Path(path).is_file():
        raise UserError(f"checkpoint not found: {path}")
    return checkpoint_model(load_checkpoint(path))


def checkpoint_model(ck) -> tuple[CharLM, Vocabulary]:
    """The language model and vocabulary of a loaded charlm checkpoint, built once: on the meta device (no
    memory, no random initialisation to throw away), its size checked, then given the saved tensors."""
    config, vocab = header_model(ck)
    with torch.device("meta"):
        model = CharLM(config)
    check_fits(sum(p.numel() for p in model.parameters()), activation_floats(config, 1),
               "the checkpoint's model is too large for this machine")
    restore_model(model, ck, assign=True)
    left = [name for name, t in chain(model.named_parameters(), model.named_buffers()) if t.is_meta]
    if left:   # a tensor the state dict does not hold (a non-persistent buffer) would have no values
        raise RuntimeError(f"CharLM tensors {left[:3]} are not in its state dict: build it on the CPU")
    return model.eval(), vocab


@torch.no_grad()
def generate(model: CharLM, vocab: Vocabulary, prime: str = "\n", length: int = 400, temperature: float = 0.8,
             top_k: int = 0, seed: int = 0, stream=None) -> str:
    """Sample ``length`` characters after ``prime``, printing each as it comes (to ``stream``).

    The prime runs through the network once; then each sampled character is
    fed back one step at a time with the carried state (no re-running of the
    prefix). Characters of the prime the vocabulary lacks become UNK.
    """
    stream = sys.stdout if stream is None else stream
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    ids = vocab.encode(prime or "\n")[None]                          # (1, P)
    logits, state = model(ids)
    logits = logits[:, -1]                                           # (1, V)
    stream.write(prime)
    chars = []
    for _ in range(length):
        nxt = sample_next(logits, temperature, top_k, generator)     # (1,)
        char = vocab.chars[int(nxt)]
        chars.append(char)
        stream.write(char)
        stream.flush()
        logits, state = model.step(nxt, state)
    stream.write("\n")
    return "".join(chars)


@torch.no_grad()
def evaluate(model: CharLM, vocab: Vocabulary, text: str) -> dict[str, float]:
    """Mean next-character loss (nats), bits per character and perplexity over ``text``."""
    ids = vocab.encode(text)
    if len(ids) < 2:
        raise UserError("the text to evaluate needs at least 2 characters")
    total, count, state = 0.0, 0, None
    for x, y in eval_batches(ids):
        logits, state = model(x, state)
        total += float(F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum"))
        count += y.numel()
    loss = total / count
    return {"loss": loss, "bpc": loss / LN2, "perplexity": math.exp(loss), "characters": count}


def evaluate_dynamic(model: CharLM, vocab: Vocabulary, text: str, config: DynamicEvalConfig) -> dict:
    """Dynamic evaluation (Krause et al. 2018; train/dynamic.py) of ``text``: the figures under their own names,
    ``dynamic_loss`` (nats/char), ``dynamic_bpc``, ``dynamic_perplexity``, never the static ones. ``model`` is
    left unchanged (the weights adapt on a copy)."""
    ids = vocab.encode(text)
    if len(ids) < 2:
        raise UserError("the text to evaluate needs at least 2 characters")
    r = dynamic_evaluate(model, ids, config)
    return {"dynamic_loss": r["loss"], "dynamic_bpc": r["loss"] / LN2, "dynamic_perplexity": math.exp(r["loss"]),
            "dynamic_characters": r["tokens"], "dynamic_updates": r["updates"], "dynamic_method": config.method,
            "dynamic_lr": config.lr, "dynamic_decay": config.decay, "dynamic_segment": config.segment}


def dynamic_options(args) -> DynamicEvalConfig | None:
    """The validated DynamicEvalConfig of ``rnnkit evaluate``'s arguments (None without --dynamic)."""
    given = {k: getattr(args, f"dynamic_{k}") for k in ("method", "lr", "decay", "segment")}
    given = {k: v for k, v in given.items() if v is not None}
    if not args.dynamic:
        if given:
            raise UserError(f"--dynamic-{next(iter(given))} needs --dynamic")
        return None
    if args.text is None:
        raise UserError("--dynamic evaluates a charlm checkpoint on --text FILE")
    try:
        return DynamicEvalConfig(**given)
    except ValueError as e:
        raise UserError(str(e)) from None
