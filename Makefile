# Thin wrappers around dev.py, which needs only Python.
.PHONY: run test test-pg lint docs
run:
	python3 dev.py run
test:
	python3 dev.py test
test-pg:
	TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test python3 dev.py test
lint:
	python3 dev.py lint
docs:
	python3 dev.py docs
