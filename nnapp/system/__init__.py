"""system: files written whole or not at all, zips read without trusting them, processes (alive, ending, CPU use), errors whose message is one
sentence, and every workaround of a library's internals (compat), each with a canary test.
Imports nothing of nnapp's."""
