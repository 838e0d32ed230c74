"""Each config field in one plain sentence: what it does and what changing it tends to do. The Train page shows
them beside the fields (and the CLI may print them); tests/test_names.py checks every field has one."""

from __future__ import annotations

FIELD_HELP = {
    "dataset": "The images the network learns from: ten classes of small grey pictures.",
    "val_fraction": "The share of training images held back to check the network on images it has not learned from; "
    "more gives a steadier check but leaves fewer images to learn from.",
    "train_subset": "Train on only this many images (0 uses all of them); fewer is quicker but usually less accurate.",
    "augment": "Shifts, turns and scales each batch a little at random; usually helps a little with new drawings, "
    "at a small cost in speed.",
    "seed": "Fixes the random choices (the split, the first weights, the batch order); change it to see how much a "
    "result varies by chance.",
    "model": "MLP: layers of units that each see every pixel; CNN: small filters that slide over the image, usually "
    "more accurate on pictures.",
    "conv": "Each block is a number of filters, their size and how much the map shrinks after it; more filters can "
    "learn more but train more slowly.",
    "padding": "'same' keeps each map's size through a filter; 'valid' lets it shrink at the edges.",
    "hidden": "The widths of the fully connected layers; wider or more layers can learn more, but train more slowly "
    "and may learn the training images by heart.",
    "activation": "The function each unit applies to its input; relu is a sound default, the others change how fast "
    "and how well the network learns.",
    "dropout": "Switches off this share of units at random while training; more fights learning by heart, but the "
    "network learns more slowly.",
    "batch_norm": "Rescales each layer's outputs batch by batch; usually makes training steadier and lets a higher "
    "learning rate work.",
    "optimizer": "How the weights move after each batch; adam and adamw adapt the step to each weight and need "
    "little tuning, sgd needs a well-chosen learning rate.",
    "lr": "How big each step of learning is; too high and the loss jumps about or blows up, too low and learning crawls.",
    "momentum": "How much of its previous step SGD keeps; more smooths and speeds up learning, too much overshoots.",
    "weight_decay": "Pulls every weight a little towards zero at each step; a little can help with new images, too "
    "much stops learning.",
    "schedule": "How the learning rate changes during the run; onecycle warms up and then cools down, and usually "
    "trains fastest.",
    "batch_size": "How many images each step learns from; larger batches get through an epoch faster, in fewer, steadier steps.",
    "epochs": "How many times training goes through all its images; more usually helps, until the network starts "
    "learning the training images by heart.",
    "loss": "What training makes smaller; cross-entropy is the usual choice for classes, mse is there to compare.",
    "label_smoothing": "Aims a little below full certainty for the right class; a little (0.1) often helps with new "
    "images, too much blurs the answers.",
    "patience": "Stops training after this many epochs without a better validation loss (0 never stops early); saves "
    "time when more epochs stop helping.",
    "precision": "The number format of the arithmetic; bf16 is faster where the processor supports it and nearly as "
    "accurate, auto picks for this machine.",
    "init_from": "The run whose weights this one starts from (fine-tuning); empty starts from fresh weights.",
    "personal": "Which of your saved drawings were added to the training images; empty adds none.",
}
