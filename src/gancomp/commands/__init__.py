"""The commands of ``gancomp`` beyond the codec ones (those are in :mod:`gancomp.cli`).

Each module holds click commands that :mod:`gancomp.cli` registers on its ``main`` group, so
errors are handled there. Importing them stays cheap: numpy and the rest load inside the
commands, and only :mod:`gancomp.commands.train` ever imports training (TensorFlow), when
``gancomp train`` runs.
"""
