"""The zoo's presets: one TOML file per entry. (This file only makes the folder package data.)"""
