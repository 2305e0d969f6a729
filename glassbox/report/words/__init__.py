"""The sentences a user reads, built from the numbers the lower layers return: evaluate/ and train/ measure and
decide (numbers, booleans, verdict codes), these say it in words, and the run layer stores each sentence where
summary.json, the terminal and the report find it. One module per topic:

    calibration.py   why a fitted temperature was kept or not; what the saved model's confidence is worth
    groups.py        the worst group against the rest, base rates against errors, parity; `glassbox eval`'s lines
    cost.py          the cost ledger: what training cost next to one prediction, energy and money
    regression.py    prediction intervals, a group's mean residual, R^2, `glassbox eval`'s lines for a regression
    control.py       the shuffled-label control: a leak, memorised noise, or neither
    chance.py        a regression's chance level (always the training mean)
    memorisation.py  whether a language model copies its training text
"""
