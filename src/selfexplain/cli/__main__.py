"""``python -m selfexplain.cli`` (``accelerate launch -m selfexplain.cli train ...``)."""

from . import main

main()
