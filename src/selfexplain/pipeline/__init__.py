"""The run commands, one module each (evaluate, attribute, construct, train, train_rl), and what they share
(runs).  :mod:`selfexplain.api` is their facade."""
