"""The wrong-solution catalogue: for each assignment, submissions that must lose specific points.

Each module is named after its assignment and defines ``WRONG``: a dict from a short name to
``{"cells": {solution grade_id: replacement source}, "loses": [test grade_ids that must score 0]}``.
Every other autograded cell must keep full marks, so each entry proves that the tests charge
exactly the part that is broken, and nothing else.
"""
