"""What the accuracy tests may assert, and why (one place for every test that needs it).

``redysim tune`` guarantees its budget on the images it tunes on (the 360 images of the
digits calibration part): tests/test_tune_cli.py asserts that. The reported accuracy is
measured on the 450 test images, another sample of the same distribution. A policy that
changes the prediction of n images nets a change of about ±√n images there, and one image
is 100 / 450 = 0.22 points, so on held-out images the tests allow the budget plus half a
point (about two images): a documented allowance, not a guarantee. The default ReDy
(k = 3, ε = 0) is not tuned at all; DESIGN.md's target for it is a loss under the budget,
held to the same looser bound on held-out images.

These bounds are asserted on the committed weights (workloads/trained/weights/), so they
hold, or not, the same on every machine: inference on fixed weights gives the same top-1
under every CPU's vector kernels (CI reruns these tests under ATEN_CPU_CAPABILITY=default).
"""

#: top-1 points a tuned policy may lose against static on the images it was tuned on
#: (DESIGN.md §8; the budget of configs/policies/*.yaml)
BUDGET = 0.5
#: top-1 points a dynamic policy may lose against static on the held-out test images
HELD_OUT_BOUND = BUDGET + 0.5
