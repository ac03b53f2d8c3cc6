"""One module per group of commands. Each exposes `add_parsers(commands)`, which registers its
sub-commands with argparse; the command functions import the library lazily, so building the
parser (and `pairzoo --help`) never imports TensorFlow."""

COMMAND_MODULES = ("pairzoo.commands.zoo", "pairzoo.commands.train",
                   "pairzoo.commands.experiment", "pairzoo.commands.analysis",
                   "pairzoo.commands.export")
