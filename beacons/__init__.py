"""Bluetooth LE: frame parsing and building, scanning sources, shopper tokens, presence engine and
the store's beacon fleet. Pure core plus adapters; never imports ``hub``."""
