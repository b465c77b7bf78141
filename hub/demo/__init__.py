"""The demo store: its catalogue (the 81 products of the Grocery Store dataset, MIT licence) and
the code that sets up a demo hub."""
