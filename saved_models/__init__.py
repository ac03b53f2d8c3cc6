"""Release weights and model cards, one folder per zoo entry, written by `pairzoo release`.
(This file only makes the folder package data.)"""
