"""image captioning: a CNN reads the image, a recurrent decoder (with attention) writes the caption

Input (--train): a captions CSV in the Flickr8k form (header ``image,caption``,
several rows per image) with the images in --images (default: the CSV's
folder, or its Images/ subfolder); images are read with Pillow, resized to
--image-size squares and normalised. With no --valid, a seeded val_fraction
of the IMAGES (with all their captions) is held out: never a caption of a
training image. Without --train it learns the built-in generated scenes
(rnnkit.data.scenes) and at the end reports the test split and the split of
unseen colour-shape combinations (OUT/test.json).

Model (models/captioner.py): a small CNN trained from scratch (or --encoder
MODULE:CLASS); the decoder is the seq2seq decoder, its state set from the image
(Show and Tell, --attention none) and attending over the grid of regions (Show,
Attend and Tell; Luong's 'general' scores by default, as they train all steps
at once). A batch is --batch-size images, each with all its captions: the CNN
runs once per image. Metrics: BLEU-1..4 (sacrebleu, corpus-level, all captions
of an image as references), exact match (the caption is one of the references) and,
on the built-in scenes, attribute accuracy (every object named with its right
shape and colour). The best checkpoint is chosen by validation attribute
accuracy (built-in data) or BLEU-4.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from ..data import images as imgdata
from ..errors import UserError
from ..models.captioner import RNN_LAYERS, Captioner, CaptionerConfig, import_encoder, sequence_loss
from ..models.decoding import beam_search, greedy
from ..models.seq2seq import ATTENTIONS, PAD
from ..train import StepOutput, Trainer, TrainConfig, load_checkpoint, restore_model
from ..train.checkpoint import atomic_write
from . import contract
from .caption_data import Captions, load_data, need_libraries
from .options import option


@dataclass
class Options(contract.TaskOptions):
    train: str | None = contract.shared("train", None, "captions CSV in the Flickr8k form: image,caption (default: "
                                        "the built-in generated scenes)")
    valid: str | None = contract.shared("valid", None, "validation captions CSV (default: a seeded val_fraction of "
                                        "the training images)")
    images: str | None = option(None, "folder of the images named in the CSVs (default: the CSV's folder, or its "
                                      "Images/ subfolder)", "data", metavar="DIR")
    image_size: int = option(64, "images are resized to this many pixels a side", "data")
    min_count: int = option(1, "keep words seen at least this often in the training captions", "data")
    train_size: int = option(20000, "built-in: generated training scenes", "data")
    valid_size: int = option(500, "built-in: generated validation scenes", "data")
    test_size: int = option(2000, "built-in: generated test scenes (seen colour-shape pairs)", "data")
    unseen_size: int = option(1000, "built-in: generated scenes each with a colour-shape pair unseen in training",
                              "data")
    max_objects: int = option(4, "built-in: the most shapes in a scene", "data")
    encoder: str | None = option(None, "a custom image encoder MODULE:CLASS, imported and built with no arguments "
                                       "(images (B, 3, S, S) → grid (B, C, h, w)); the checkpoint stores its name, "
                                       "and evaluate/predict import it only when given the same --encoder",
                                 "model", metavar="MODULE:CLASS")
    cell: str = option("gru", "recurrent cell of the decoder", "model", choices=tuple(sorted(RNN_LAYERS)))
    attention: str = option("general", "attention over image regions: general/dot (Luong; the default: "
                                        "teacher forcing runs all steps at once), additive (Xu et al.'s soft "
                                        "attention, stepwise in training), none (Show and Tell: the image sets "
                                        "the state only)",
                            "model", choices=ATTENTIONS)
    hidden_size: int = option(256, "decoder units per layer", "model")
    decoder_layers: int = option(1, "decoder layers", "model")
    embedding_dim: int = option(64, "word embedding size", "model")
    memory_size: int = option(128, "width of each image region's vector", "model")
    dropout: float = option(0.0, "dropout on embeddings, the state map and before the output", "model")
    minutes: float | None = contract.shared("minutes", 10.0)
    epochs: int = contract.shared("epochs", 50, "passes over the training captions, if the budget lasts")
    batch_size: int = contract.shared("batch_size", 32, "images per batch, each with all its captions (the encoder "
                                      "runs once per image)")
    threads: int | None = contract.shared("threads", 1, "torch threads for training: one ran faster than two on the "
                                          "shared 2-core machine (benchmarks/caption.md)")
    warmup_steps: int | None = contract.shared("warmup_steps", None, "linear warmup updates (default: 50; none with "
                                                                     "plateau)")
    beam: int = option(1, "beam width of the final test decoding (1: greedy)", "output")
    out: str = contract.shared("out", "runs/caption", "directory for checkpoints, history and test.json")

    def __post_init__(self):
        super().__post_init__()
        for name in ("image_size", "min_count", "train_size", "valid_size", "test_size", "unseen_size",
                     "max_objects", "hidden_size", "decoder_layers", "embedding_dim", "memory_size", "beam"):
            if getattr(self, name) < 1:
                raise UserError(f"option {name} must be a positive integer, got {getattr(self, name)}")
        if self.max_objects > 6:
            raise UserError(f"option max_objects must be at most 6, got {self.max_objects}")
        if self.valid and not self.train:
            raise UserError("--valid needs --train (the built-in scenes bring their own validation split)")
        contract.check_rate("dropout", self.dropout)
        if self.images is not None and not Path(self.images).is_dir():
            raise UserError(f"--images folder not found: {self.images}")
        try:
            config = self.model_config(10)
            if self.encoder is not None:   # imported and run once on a blank image now, before any work
                Captioner(config, import_encoder(self.encoder))
        except ValueError as e:
            raise UserError(str(e)) from None
        need_libraries()

    def model_config(self, vocab_size: int) -> CaptionerConfig:
        return CaptionerConfig(vocab_size, self.image_size, memory_size=self.memory_size, cell=self.cell,
                               hidden_size=self.hidden_size, decoder_layers=self.decoder_layers,
                               embedding_dim=self.embedding_dim, attention=self.attention, dropout=self.dropout,
                               encoder=self.encoder)


# ---- decoding, metrics ------------------------------------------------------------------------------

@torch.no_grad()
def describe(model: Captioner, cap: Captions, images: torch.Tensor, beam: int = 1, batch_size: int = 256) -> list:
    """The best Hypothesis (models.decoding) for each uint8 image (N, 3, S, S)."""
    out = []
    for start in range(0, len(images), batch_size):
        x = imgdata.normalise(images[start:start + batch_size], cap.mean, cap.std)
        ones = torch.ones(len(x), dtype=torch.long)    # the length limit is max_len_b tokens for every image
        if beam == 1:
            out += greedy(model, x, ones, max_len_a=0, max_len_b=cap.max_len)
        else:
            out += [h[0] for h in beam_search(model, x, ones, beam=beam, max_len_a=0, max_len_b=cap.max_len)]
    return out


def metrics(hyps: list[str], data: imgdata.CaptionSet) -> dict:
    """BLEU-1..4 (percent), exact match and, for generated scenes, attribute accuracy (percent)."""
    from sacrebleu.metrics import BLEU
    refs = [[" ".join(imgdata.tokenize(c)) for c in caps] for caps in data.captions]
    k = max(map(len, refs))
    streams = [[r[j] if j < len(r) else None for r in refs] for j in range(k)]   # all captions of each image
    m = {f"bleu{n}": BLEU(max_ngram_order=n).corpus_score(hyps, streams).score for n in (1, 2, 3, 4)}
    m["exact"] = 100.0 * sum(h in r for h, r in zip(hyps, refs)) / len(hyps)
    if data.scenes is not None:
        from ..data.scenes import attributes_right
        m["attr"] = 100.0 * sum(attributes_right(h, s) for h, s in zip(hyps, data.scenes)) / len(hyps)
    return m


def evaluate_set(model: Captioner, cap: Captions, data: imgdata.CaptionSet, beam: int = 1) -> dict:
    hyps = [cap.text(h.tokens) for h in describe(model, cap, data.images, beam)]
    result = {**metrics(hyps, data), "images": len(data), "beam": beam}
    if data.scenes is not None:   # the scenes with three or more objects, where attention should matter
        many = [i for i, s in enumerate(data.scenes) if len(s["objects"]) >= 3]
        if many:
            sub = data.subset(many)
            result.update({f"{k}_3plus": v for k, v in metrics([hyps[i] for i in many], sub).items()})
    return result


# ---- training ---------------------------------------------------------------------------------------

class ValidationSet:
    """The whole validation set as one item: the step decodes it all, so BLEU is corpus-level."""

    def __init__(self, data: imgdata.CaptionSet, cap: Captions):
        self.data = data
        self.batches = imgdata.CaptionBatches(data.images, cap.ids(data), 256, cap.mean, cap.std)

    def __iter__(self):
        yield self


def make_step(model: Captioner, cap: Captions, timer: dict):
    def step(batch, state):
        if isinstance(batch, ValidationSet):
            start, total, tokens = time.monotonic(), 0.0, 0
            for images, per_image, tgt_in, tgt_out in batch.batches:
                logits, _ = model(images, tgt_in, per_image)
                n = int((tgt_out != PAD).sum())
                total, tokens = total + float(sequence_loss(logits, tgt_out)) * n, tokens + n
            hyps = [cap.text(h.tokens) for h in describe(model, cap, batch.data.images)]
            result = metrics(hyps, batch.data)
            if "attr" in result:   # "attr_acc": the trainer maximises metrics named *acc* (and minimises "attr")
                result["attr_acc"] = result.pop("attr")
            timer["validation"] += time.monotonic() - start
            return StepOutput(torch.tensor(total / tokens), None, n=len(batch.data), metrics=result)
        images, per_image, tgt_in, tgt_out = batch
        timer["images"] += len(images)
        timer["captions"] += len(tgt_in)
        logits, _ = model(images, tgt_in, per_image)
        return StepOutput(sequence_loss(logits, tgt_out), None, n=len(images))
    return step


def run(o: Options) -> int:
    contract.start(o)   # --out checked before any work, then seeded
    sets, source = load_data(o)
    cap = Captions.build(sets["train"], o.min_count)
    config = o.model_config(len(cap.vocab))
    model = Captioner(config, None if o.encoder is None else import_encoder(o.encoder))
    select = "attr_acc" if sets["train"].scenes is not None else "bleu4"
    n_caps = sum(map(len, sets["train"].captions))
    print(f"caption: {len(sets['train']):,} training images ({n_caps:,} captions) and {len(sets['valid']):,} "
          f"validation images of {source}; {len(cap.vocab)} words; {sum(p.numel() for p in model.parameters()):,} "
          f"parameters (attention {config.attention}, {config.cell}); best checkpoint by validation {select}",
          file=sys.stderr)
    train_config = TrainConfig(epochs=o.epochs, max_steps=o.max_steps, max_minutes=o.minutes, optimizer=o.optimizer,
                               lr=o.lr, weight_decay=o.weight_decay, schedule=o.schedule, warmup_steps=contract.warmup(o, 50),
                               min_lr_ratio=0.05, clip_norm=o.clip_norm or None, monitor=f"val_{select}",
                               patience=o.patience, eval_every=o.eval_every, seed=o.seed,
                               verbose=0 if o.quiet else 1, out_dir=o.out)
    timer = {"validation": 0.0, "images": 0, "captions": 0}
    task_config = {"task": "caption", "model": config.to_dict(), **cap.to_dict(), "options": asdict(o)}
    trainer = Trainer(model, make_step(model, cap, timer), train_config, task_config=task_config)
    train_batches = imgdata.CaptionBatches(sets["train"].images, cap.ids(sets["train"]), o.batch_size, cap.mean,
                                           cap.std, shuffle=True)
    start = time.monotonic()
    trainer.fit(train_batches, ValidationSet(sets["valid"], cap))
    fit_seconds = time.monotonic() - start
    best = max(trainer.history.rows, key=lambda r: r[f"val_{select}"])
    path = contract.load_best(trainer, model)
    train_seconds = fit_seconds - timer["validation"]   # updates and checkpoint writes, not validation decoding
    result = {"source": source, "best_step": best["step"], "updates": trainer.global_step,
              "train_minutes": round(trainer.elapsed / 60, 3),
              "train_images_per_s": round(timer["images"] / train_seconds, 1),
              "train_captions_per_s": round(timer["captions"] / train_seconds, 1), "threads": torch.get_num_threads(),
              "options": asdict(o)}
    for name in ("valid", "test", "unseen"):
        if name in sets:
            result[name] = evaluate_set(model, cap, sets[name], o.beam)
            print(f"{name}: {report(result[name])}")
    atomic_write(Path(o.out) / "test.json", json.dumps(result, indent=1).encode())
    print(f"best checkpoint {path} (update {best['step']}); {trainer.global_step} updates in "
          f"{trainer.elapsed / 60:.1f} min, {result['train_images_per_s']:.0f} training images/s; "
          f"figures in {Path(o.out) / 'test.json'}")
    return 0


def report(m: dict) -> str:
    attr = f"attributes right {m['attr']:.2f}%, " if "attr" in m else ""
    many = f" (3+ objects: attributes {m['attr_3plus']:.2f}%, BLEU-4 {m['bleu4_3plus']:.2f})" if "attr_3plus" in m else ""
    return (f"{m['images']:,} images, beam {m['beam']}: {attr}exact {m['exact']:.2f}%, BLEU-1..4 "
            + " / ".join(f"{m[f'bleu{n}']:.2f}" for n in (1, 2, 3, 4)) + many)



# ---- rnnkit evaluate / rnnkit predict -------------------------------------------------------------

def load(ck, encoder: str | None = None) -> tuple[Captioner, Captions, dict]:
    """The model, the caption settings and the training options of a loaded caption checkpoint. A checkpoint
    trained with a custom encoder names it; it is imported only if ``encoder`` (the user's --encoder) is that
    same name: a checkpoint never makes rnnkit import code on its own."""
    try:
        config, cap = CaptionerConfig(**ck.config["model"]), Captions.from_dict(ck.config)
    except (KeyError, TypeError, ValueError) as e:
        raise UserError(f"checkpoint {ck.path} has a malformed caption config ({e})") from None
    if config.encoder != encoder:
        raise UserError(f"checkpoint {ck.path} was trained with the custom encoder {config.encoder}: pass --encoder "
                        f"{config.encoder} to import it (rnnkit imports no code a checkpoint names on its own)"
                        if encoder is None else
                        f"--encoder {encoder} does not match checkpoint {ck.path}, which was trained with "
                        + (f"the custom encoder {config.encoder}" if config.encoder else "the built-in encoder"))
    try:
        model = Captioner(config, None if encoder is None else import_encoder(encoder))
    except ValueError as e:
        raise UserError(str(e)) from None
    restore_model(model, ck)
    return model.eval(), cap, ck.config.get("options", {})


def check_beam(beam: int) -> None:
    if beam < 1:
        raise UserError(f"--beam must be at least 1, got {beam}")


def evaluate_command(args) -> int:
    """``rnnkit evaluate --checkpoint CK --data CAPTIONS.csv [--images DIR] [--beam K] [--json]``; --data
    builtin:test or builtin:unseen regenerates the built-in split the checkpoint was trained beside."""
    check_beam(args.beam)
    if not args.data:
        raise UserError("evaluate a caption checkpoint on --data CAPTIONS.csv (or builtin:test, builtin:unseen)")
    need_libraries()
    model, cap, options = load(load_checkpoint(args.checkpoint), getattr(args, "encoder", None))
    size = model.config.image_size
    if args.data.startswith("builtin:"):
        from ..data import scenes
        split = args.data.split(":", 1)[1]
        if split not in ("test", "unseen", "valid"):
            raise UserError(f"--data builtin:SPLIT takes test, unseen or valid, got {split!r}")
        n = options.get(f"{split}_size", 1000)
        im, caps, sc = scenes.scene_splits({split: n}, options.get("seed", 0), size,
                                           options.get("max_objects", 4))[split]
        data = imgdata.CaptionSet(im, caps, [f"{split}-{i}" for i in range(n)], sc)
    else:
        if not Path(args.data).is_file():
            raise UserError(f"--data file not found: {args.data}")
        data = imgdata.read_folder(args.data, args.images, size)
    m = evaluate_set(model, cap, data, args.beam)
    print(json.dumps(m) if args.json else report(m))
    return 0


def predict_command(args) -> int:
    """``rnnkit predict --checkpoint CK IMAGE ... [--beam K] [--attention-png PNG]``: image<TAB>caption lines."""
    check_beam(args.beam)
    if not args.input or "-" in args.input:
        raise UserError("predict with a caption checkpoint takes image files: rnnkit predict --checkpoint CK "
                        "IMAGE [IMAGE ...]")
    need_libraries()
    png = contract.check_png(args.attention_png, "the attention picture", getattr(args, "overwrite", False))
    for p in args.input:
        if not Path(p).is_file():
            raise UserError(f"image not found: {p}")
    model, cap, _ = load(load_checkpoint(args.checkpoint), getattr(args, "encoder", None))
    if png is not None and model.decoder.attention is None:
        raise UserError("this model has no attention (trained with --attention none): no map to draw")
    images = imgdata.load_images([Path(p) for p in args.input], model.config.image_size)
    hyps = describe(model, cap, images, args.beam)
    for p, h in zip(args.input, hyps):
        print(f"{p}\t{cap.text(h.tokens)}")
    if png is not None:
        plot_attention(images[0], cap, hyps[0], model.grid, png)
        print(f"rnnkit: attention of each word over {args.input[0]} written to {png}", file=sys.stderr)
    return 0


def plot_attention(image: torch.Tensor, cap: Captions, hyp, grid: tuple[int, int], path: Path,
                   title: str | None = None) -> None:
    """The image, then one panel per word (and </s>) with that step's attention over the regions, upsampled."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch.nn.functional as F
    words = cap.vocab.decode(hyp.tokens) + ["</s>"]
    size = image.shape[-1]
    att = hyp.attention[:len(words)].view(len(words), 1, *grid)
    att = F.interpolate(att, size=(size, size), mode="bilinear", align_corners=False)[:, 0].numpy()
    pic = image.permute(1, 2, 0).numpy()
    cols = min(6, len(words) + 1)
    rows = -(-(len(words) + 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.8 * cols, 1.9 * rows + (0.4 if title else 0)), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    axes.flat[0].imshow(pic)
    axes.flat[0].set_title("image", fontsize=9)
    for k, w in enumerate(words):
        ax = axes.flat[k + 1]
        ax.imshow(pic)
        ax.imshow(att[k], cmap="inferno", alpha=0.6, vmin=0, vmax=max(float(att[k].max()), 1e-6))
        ax.set_title(w, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
