"""sequence to sequence with attention: translate or transduce sentences, decode greedily or by beam search

An encoder reads the source sentence, an attentional decoder writes the
target one token at a time (models/seq2seq.py). Data: two parallel text
files (--src/--tgt, one sentence a line, .gz allowed) or a TSV of
source TAB target (--train); validation likewise (--valid-src/--valid-tgt
or --valid), else a seeded 10% of the training pairs. With no files it
trains on generated data (--builtin): addition problems ("535+61" → "596")
or dates in many human formats and languages → ISO 8601, and at the end
reports exact match on a test set unseen in training (OUT/test.json).
The validation metric (--select) chooses the best checkpoint.
"""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..data import generated, parallel
from ..data.parallel import TOKENIZATIONS, PairBatches, Translator
from ..errors import UserError
from ..models.decoding import PENALTIES, beam_search, greedy
from ..models.seq2seq import ATTENTIONS, BRIDGES, PAD, RNN_LAYERS, Seq2Seq, Seq2SeqConfig, sequence_loss
from ..train import StepOutput, Trainer, TrainConfig, load_checkpoint, restore_model, seed_everything
from ..train.checkpoint import atomic_write
from . import contract
from .options import check_out_dir, option, resume_options

SELECT = ("auto", "exact", "bleu", "chrf", "loss")


@dataclass
class Options(contract.TrainOptions):
    src: str | None = option(None, "source sentences, one a line (.gz allowed); with --tgt", "data")
    tgt: str | None = option(None, "target sentences, line-aligned with --src", "data")
    train: str | None = contract.shared("train", None, "training pairs as a TSV file: source<TAB>target")
    valid_src: str | None = option(None, "validation sources (default: a seeded 10%% of the training pairs)", "data")
    valid_tgt: str | None = option(None, "validation targets, with --valid-src", "data")
    valid: str | None = contract.shared("valid", None, "validation pairs as a TSV file")
    val_fraction: float = contract.shared("val_fraction", 0.1, "share of the training pairs held out for validation "
                                          "when none are given")
    builtin: str = option("addition", "generated data when no files are given", "data", choices=("addition", "dates"))
    train_size: int = option(50000, "generated training pairs", "data")
    digits: int = option(3, "addition: the most digits of each number", "data")
    tokens: str = option("chars", "tokenization of both sides", "data", choices=TOKENIZATIONS)
    subword_vocab: int = option(8000, "--tokens subword: BPE vocabulary size (Hugging Face tokenizers)", "data")
    shared_vocab: bool = option(False, "one vocabulary for source and target", "data")
    min_count: int = option(1, "keep tokens seen at least this often (rarer ones become <unk>)", "data")
    max_vocab: int | None = option(None, "keep at most this many tokens per vocabulary", "data")
    reverse_source: bool = option(False, "read each source backwards (Sutskever et al. 2014; the Keras addition "
                                         "example reverses its input)", "data")
    cell: str = option("gru", "recurrent cell of encoder and decoder", "model", choices=tuple(sorted(RNN_LAYERS)))
    hidden_size: int = option(128, "units per layer (and per direction in the encoder)", "model", bounds="[1, 2**16]")
    num_layers: int = option(1, "encoder layers", "model")
    decoder_layers: int = option(1, "decoder layers", "model")
    embedding_dim: int = option(64, "token embedding size", "model")
    bidirectional: bool = option(True, "bidirectional encoder", "model")
    attention: str = option("general", "additive (Bahdanau), general/dot (Luong), none (2014 encoder-decoder)",
                            "model", choices=ATTENTIONS)
    input_feed: bool = option(False, "feed the last attentional vector into the decoder (Luong; general/dot)",
                              "model")
    tie_embeddings: bool = option(False, "output layer shares the target embedding matrix", "model")
    bridge: str = option("linear", "decoder initial state from the encoder's final state", "model", choices=BRIDGES)
    dropout: float = option(0.0, "dropout on embeddings, between layers and before the output", "model")
    minutes: float | None = contract.shared("minutes", 5.0)
    epochs: int = contract.shared("epochs", 1000, "passes over the training pairs, if the budget lasts")
    batch_size: int = contract.shared("batch_size", 128, "sentence pairs per batch")
    lr: float = contract.shared("lr", 3e-3)
    weight_decay: float = contract.shared("weight_decay", 0.0)
    schedule: str = contract.shared("schedule", "cosine")
    warmup_steps: int | None = contract.shared("warmup_steps", None, "linear warmup updates (default: 50; none with "
                                                                     "plateau)")
    clip_norm: float = contract.shared("clip_norm", 1.0)
    label_smoothing: float = option(0.0, "label smoothing of the training loss", "training")
    sampling_ratio: float = option(0.0, "scheduled sampling: chance of feeding the model's own previous token "
                                        "instead of the true one in training", "training")
    eval_every: int | None = contract.shared("eval_every", None)
    patience: int | None = contract.shared("patience", None, "stop after this many validations without a better "
                                           "--select metric")
    select: str = option("auto", "validation metric that picks the best checkpoint (auto: exact match for "
                                 "built-in data, chrF for --tokens chars, BLEU for words)", "training",
                         choices=SELECT)
    seed: int = contract.shared("seed", 0)
    beam: int = option(1, "beam width of the final test decoding (1: greedy)", "output")
    alpha: float = option(0.0, "length penalty exponent (GNMT form ((5 + n) / 6) ** alpha)", "output")
    penalty: str = option("gnmt", "length penalty form", "output", choices=PENALTIES)
    max_len_a: float = option(2.0, "at most a * source length + b target tokens", "output")
    max_len_b: float = option(10.0, "see --max-len-a", "output")
    test_size: int = option(10000, "generated test pairs, unseen in training (built-in data)", "output")
    out: str = contract.shared("out", "runs/seq2seq", "directory for checkpoints, history and test.json")

    def __post_init__(self):
        super().__post_init__()   # validates every declared option (tasks/options.py)
        for name in ("train_size", "digits", "hidden_size", "num_layers", "decoder_layers", "embedding_dim",
                     "epochs", "batch_size", "beam", "min_count", "test_size", "subword_vocab"):
            if getattr(self, name) < 1:
                raise UserError(f"option {name} must be a positive integer, got {getattr(self, name)}")
        if (self.src is None) != (self.tgt is None) or (self.valid_src is None) != (self.valid_tgt is None):
            raise UserError("--src and --tgt go together, and so do --valid-src and --valid-tgt")
        if self.src and self.train:
            raise UserError("give the training pairs as --src/--tgt or as --train TSV, not both")
        if (self.valid_src or self.valid) and not (self.src or self.train):
            raise UserError("validation files need training files (--src/--tgt or --train)")
        if self.valid_src and self.valid:
            raise UserError("give the validation pairs as --valid-src/--valid-tgt or as --valid TSV, not both")
        for name in ("dropout", "label_smoothing", "sampling_ratio"):
            if not 0 <= getattr(self, name) < 1:
                raise UserError(f"option {name} must be in [0, 1), got {getattr(self, name)}")
        if not 0 < self.val_fraction < 0.5:
            raise UserError(f"option val_fraction must be in (0, 0.5), got {self.val_fraction}")
        if self.patience is not None and self.patience < 1:
            raise UserError(f"option patience must be a positive integer, got {self.patience}")
        if self.weight_decay < 0 or self.lr <= 0 or self.clip_norm < 0 or self.alpha < 0 or (self.minutes is not None and self.minutes <= 0):
            raise UserError("options lr and minutes must be positive; clip_norm, alpha, weight_decay not negative")
        try:
            self.model_config(5, 5)
        except ValueError as e:
            raise UserError(str(e)) from None
        for path in (self.src, self.tgt, self.train, self.valid_src, self.valid_tgt, self.valid):
            if path is not None and not Path(path).is_file():
                raise UserError(f"file not found: {path}")

    def model_config(self, src_vocab: int, tgt_vocab: int) -> Seq2SeqConfig:
        return Seq2SeqConfig(src_vocab, tgt_vocab, self.cell, self.hidden_size, self.num_layers, self.decoder_layers,
                             self.embedding_dim, self.bidirectional, self.attention, self.input_feed,
                             self.tie_embeddings, self.bridge, self.dropout)


def load_pairs(o: Options):
    """(train, valid, test or None, a description of the data)."""
    if o.src or o.train:
        train = parallel.read_parallel(o.src, o.tgt) if o.src else parallel.read_tsv(o.train)
        if o.valid_src or o.valid:
            valid = parallel.read_parallel(o.valid_src, o.valid_tgt) if o.valid_src else parallel.read_tsv(o.valid)
        else:
            train, valid = parallel.split_pairs(train, o.val_fraction, o.seed)
        return train, valid, None, f"{o.src} → {o.tgt}" if o.src else o.train
    if o.builtin == "addition":
        parts = generated.addition_splits(o.train_size, 1000, o.test_size, o.digits, False, o.seed)
        return (*parts, f"generated addition of numbers of up to {o.digits} digits")
    parts, note = generated.date_splits(o.train_size, 1000, o.test_size, o.seed)
    return (*parts, f"generated dates ({note})")


def translate(model: Seq2Seq, tr: Translator, sentences: list[str], beam: int = 1, batch_size: int = 64,
              workers: int = 1, **decode) -> list:
    """Hypotheses (models.decoding.Hypothesis) for each sentence, in input order.

    Sentences of similar length are batched together (less padding); ``workers`` batches are decoded at
    once in threads, each running torch on one thread (on a busy machine this scales better than torch's
    own intra-op threads, whose barriers stall when a thread is preempted)."""
    ids = [tr.source_ids(s) for s in sentences]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    chunks = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    model.eval()

    def run(rows):
        src, lengths = parallel.pad([ids[i] for i in rows])
        if beam == 1:
            return greedy(model, src, lengths, **decode)
        return [h[0] for h in beam_search(model, src, lengths, beam=beam, **decode)]
    if workers > 1:
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(run, chunks))
    else:
        results = [run(rows) for rows in chunks]
    out = [None] * len(ids)
    for rows, hyps in zip(chunks, results):
        for i, h in zip(rows, hyps):
            out[i] = h
    return out


def scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """BLEU and chrF (sacrebleu, on detokenised text) and exact match, all in percent."""
    result = {"exact": 100.0 * sum(h == r for h, r in zip(hypotheses, references)) / max(len(references), 1)}
    try:
        import sacrebleu
    except ImportError:
        return result
    result["bleu"] = sacrebleu.corpus_bleu(hypotheses, [references]).score
    result["chrf"] = sacrebleu.corpus_chrf(hypotheses, [references]).score
    return result


class ValidationSet:
    """The whole validation set as one 'batch': the trainer's evaluation calls the step once with it, so
    corpus-level BLEU and chrF can be computed over all sentences together."""

    def __init__(self, pairs, tr: Translator, batch_size: int = 256):
        self.pairs, self.batches = pairs, list(PairBatches(*tr.encode(pairs), batch_size))

    def __iter__(self):
        yield self


def make_step(model: Seq2Seq, tr: Translator, o: Options):
    decode = dict(max_len_a=o.max_len_a, max_len_b=o.max_len_b)

    def step(batch, state):
        if isinstance(batch, ValidationSet):   # evaluation: NLL, then greedy decoding and its metrics
            total, tokens = 0.0, 0
            for src, lengths, tgt_in, tgt_out in batch.batches:
                logits, _ = model(src, lengths, tgt_in)
                n = int((tgt_out != PAD).sum())
                total += float(sequence_loss(logits, tgt_out)) * n
                tokens += n
            hyps = translate(model, tr, [s for s, _ in batch.pairs], 1, 256, **decode)
            metrics = scores([tr.text(h.tokens) for h in hyps], [t for _, t in batch.pairs])
            return StepOutput(torch.tensor(total / tokens), None, n=tokens, metrics=metrics)
        src, lengths, tgt_in, tgt_out = batch
        logits, _ = model(src, lengths, tgt_in, o.sampling_ratio)
        loss = sequence_loss(logits, tgt_out, o.label_smoothing)
        return StepOutput(loss, None, n=int((tgt_out != PAD).sum()))
    return step


def run(o: Options) -> int:
    resume = check_out_dir(o.out, o.resume, o.overwrite)   # before any work
    if resume is not None:   # the run's own options; vocabularies and model come from the checkpoint
        ck = load_checkpoint(resume)
        o = resume_options(o, ck.config.get("options"), str(resume))
    seed_everything(o.seed)
    out = Path(o.out)
    train, valid, test, source = load_pairs(o)
    if resume is not None:
        tr, config = Translator.from_dict(ck.config), Seq2SeqConfig(**ck.config["model"])
    else:
        tr = Translator.learn(train, o.tokens, o.shared_vocab, o.reverse_source, o.min_count, o.max_vocab,
                              o.subword_vocab)
        config = o.model_config(len(tr.src_vocab), len(tr.tgt_vocab))
    model = Seq2Seq(config)
    sacrebleu_ok = "bleu" in scores(["a"], ["a"])
    select = o.select
    if select == "auto":   # BLEU is 0 for one-word outputs: character-level text is judged by chrF
        select = "exact" if test is not None or not sacrebleu_ok else "chrf" if o.tokens == "chars" else "bleu"

    if select in ("bleu", "chrf") and not sacrebleu_ok:
        raise UserError(f"--select {select} needs sacrebleu: pip install 'rnnkit[seq2seq]'")
    if not sacrebleu_ok:
        print("seq2seq: note: sacrebleu is not installed, so only exact match is reported "
              "(pip install 'rnnkit[seq2seq]' for BLEU and chrF)", file=sys.stderr)
    train_config = TrainConfig(
        epochs=o.epochs, max_steps=o.max_steps, max_minutes=o.minutes, optimizer=o.optimizer, lr=o.lr,
        weight_decay=o.weight_decay, patience=o.patience, schedule=o.schedule, warmup_steps=contract.warmup(o, 50), min_lr_ratio=0.02, clip_norm=o.clip_norm or None,
        eval_every=o.eval_every, monitor=f"val_{select}", seed=o.seed, verbose=0 if o.quiet else 1, out_dir=str(out))
    print(f"seq2seq: {len(train):,} training and {len(valid):,} validation pairs of {source}; vocabularies "
          f"{len(tr.src_vocab)} / {len(tr.tgt_vocab)} {o.tokens}; {sum(p.numel() for p in model.parameters()):,} "
          f"parameters ({config.cell}, attention {config.attention}); best checkpoint by validation {select}",
          file=sys.stderr)
    task_config = {"task": "seq2seq", "model": config.to_dict(), **tr.to_dict(), "options": {k: v for k, v in asdict(o).items() if k not in ("resume", "overwrite")}}
    trainer = Trainer(model, make_step(model, tr, o), train_config, task_config=task_config)
    trainer.fit(PairBatches(*tr.encode(train), o.batch_size, shuffle=True), ValidationSet(valid, tr),
                resume=str(resume) if resume else None)
    best_row = max(trainer.history.rows, key=lambda r: -r["val_loss"] if select == "loss" else r[f"val_{select}"])
    print("best validation: " + ", ".join(f"{k[4:]} {v:.4g}" for k, v in best_row.items() if k.startswith("val_"))
          + f" (update {best_row['step']}); {trainer.global_step} updates in {trainer.elapsed / 60:.1f} min; "
          f"checkpoints in {out}")
    if test is not None:
        restore_model(model, load_checkpoint(out / "best.safetensors"))
        result = evaluate_pairs(model, tr, test, o.beam, alpha=o.alpha, penalty=o.penalty, max_len_a=o.max_len_a,
                                max_len_b=o.max_len_b)
        result.update(source=source, train_pairs=len(train), updates=trainer.global_step,
                      train_minutes=round(trainer.elapsed / 60, 3))
        atomic_write(out / "test.json", json.dumps(result, indent=1).encode())
        print(f"test ({len(test):,} pairs unseen in training, beam {o.beam}): exact match {result['exact']:.2f}%"
              + (f", BLEU {result['bleu']:.2f}, chrF {result['chrf']:.2f}" if "bleu" in result else "")
              + f"; written to {out / 'test.json'}")
    return 0


def evaluate_pairs(model: Seq2Seq, tr: Translator, pairs, beam: int = 1, **decode) -> dict:
    hyps = translate(model, tr, [s for s, _ in pairs], beam, **decode)
    return {**scores([tr.text(h.tokens) for h in hyps], [t for _, t in pairs]), "sentences": len(pairs)}


def load_model(path: str) -> tuple[Seq2Seq, Translator, dict]:
    """The model, the translator and the training options saved in a seq2seq checkpoint."""
    if not Path(path).is_file():
        raise UserError(f"checkpoint not found: {path}")
    ck = load_checkpoint(path)
    if ck.config.get("task") != "seq2seq":
        raise UserError(f"{path} is a checkpoint of task {ck.config.get('task')!r}, not of a seq2seq model")
    return checkpoint_model(ck)


# ---- rnnkit evaluate / rnnkit predict (the task contract's evaluate_file, report, predict) ----------

def decode_options(options: dict, **given) -> dict:
    """Decoding settings: those given (not None), else those the model was trained with."""
    defaults = {"alpha": 0.0, "penalty": "gnmt", "max_len_a": 2.0, "max_len_b": 10.0}
    return {k: given[k] if given.get(k) is not None else options.get(k, d) for k, d in defaults.items()}


def checkpoint_model(ck) -> tuple[Seq2Seq, Translator, dict]:
    """The model, translator and training options of a loaded seq2seq checkpoint."""
    try:
        model, tr = Seq2Seq(Seq2SeqConfig(**ck.config["model"])), Translator.from_dict(ck.config)
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"checkpoint {ck.path} has a malformed seq2seq config ({e})") from None
    restore_model(model, ck)
    return model.eval(), tr, ck.config.get("options", {})


def evaluate_file(ck, path: str, png: str | None = None, *, tgt: str | None = None, beam: int = 1,
                  workers: int = 1, overwrite: bool = False, **decode) -> dict:
    """BLEU, chrF and exact match (percent) on ``path`` (a TSV of pairs), or on sources ``path`` with
    references ``tgt``; ``png`` draws the first sentence's attention (an existing file only with ``overwrite``)."""
    if beam < 1 or workers < 1:
        raise UserError(f"--beam and --workers must be at least 1, got {beam} and {workers}")
    png_path = contract.check_png(png, "the attention map", overwrite)
    model, tr, options = checkpoint_model(ck)
    pairs = parallel.read_parallel(path, tgt) if tgt else parallel.read_tsv(path)
    hyps = translate(model, tr, [s for s, _ in pairs], beam, workers=workers, **decode_options(options, **decode))
    if png_path:
        plot_attention(model, tr, pairs[0][0], hyps[0], png_path)
    result = {**scores([tr.text(h.tokens) for h in hyps], [t for _, t in pairs]), "sentences": len(pairs)}
    return {**result, "beam": beam}


def report(m: dict) -> str:
    return (f"{m['sentences']:,} sentences, beam {m['beam']}: exact match {m['exact']:.2f}%"
            + (f", BLEU {m['bleu']:.2f}, chrF {m['chrf']:.2f}" if "bleu" in m else
               " (BLEU and chrF need sacrebleu: pip install 'rnnkit[seq2seq]')"))


def predict(ck, source: str | None, stream, *, beam: int = 1, png: str | None = None, workers: int = 1,
            overwrite: bool = False, **decode) -> None:
    """One output line per input line of ``source`` (a file, or - / None for standard input); ``png`` draws the
    first sentence's attention (an existing file only with ``overwrite``)."""
    if beam < 1 or workers < 1:
        raise UserError(f"--beam and --workers must be at least 1, got {beam} and {workers}")
    png_path = contract.check_png(png, "the attention map", overwrite)
    model, tr, options = checkpoint_model(ck)
    lines = sys.stdin.read().splitlines() if source in (None, "-") else parallel.read_lines(source)
    hyps = translate(model, tr, lines, beam, workers=workers, **decode_options(options, **decode))
    for h in hyps:
        stream.write(tr.text(h.tokens) + "\n")
    if png_path and hyps:
        plot_attention(model, tr, lines[0], hyps[0], png_path)
        print(f"rnnkit: attention map of the first sentence written to {png_path}", file=sys.stderr)


def plot_attention(model: Seq2Seq, tr: Translator, sentence: str, hyp, path: Path) -> None:
    """A heatmap of hyp.attention (output tokens × source tokens); each row sums to 1."""
    if model.config.attention == "none":
        raise UserError("this model has no attention (trained with --attention none): no map to draw")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    src = tr.source_tokens(sentence) + ["</s>"]
    tgt = tr.tgt_vocab.decode(hyp.tokens) + ["</s>"]
    weights = hyp.attention[:len(tgt), :len(src)].numpy()
    label = (lambda t: repr(t)[1:-1]) if tr.tokens == "chars" else (lambda t: t)
    fig, ax = plt.subplots(figsize=(1.5 + 0.3 * len(src), 1.2 + 0.3 * len(tgt)))
    ax.imshow(weights, cmap="Greys", vmin=0, vmax=1)
    ax.set_xticks(range(len(src)), [label(t) for t in src], rotation=90)
    ax.set_yticks(range(len(tgt)), [label(t) for t in tgt])
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
