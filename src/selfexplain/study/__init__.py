"""Studies, one concept per module: the experiment file (config), the study folder (folder), the grid that
reproduce walks (grid) and its smoke mode (smoke).  :mod:`selfexplain.experiments` is their facade."""
