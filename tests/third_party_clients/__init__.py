"""Small programs that read and write the emulators through the third-party PSA clients from PyPI
(pyconnectwise, autotask-client, HaloPSA). They run in their own Python 3.12 environment
(``.venv-clients``, made by ``make``), one process per test, and print JSON; the tests in
``tests/integration/test_third_party_clients.py`` start them and check what they read."""
