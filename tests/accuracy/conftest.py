"""The `slow` marker: tests over the 1000 coco-val1k images, run by their own ctest (pytest_accuracy_val1k)."""


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: minutes on 2 cores (coco-val1k); its own ctest, label slow")
