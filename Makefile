# Two commands do all set-up: `make demo` and `make test` (see README).
.PHONY: demo test install lint format messages clean

install: .venv/.installed

.venv/.installed: pyproject.toml scripts/bootstrap.sh scripts/oidc-provider/package-lock.json frontend/package-lock.json
	scripts/bootstrap.sh
	touch $@

demo: install
	scripts/demo.sh

test: install
	scripts/run-tests.sh

lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format: install
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

messages: install
	DEBUG=1 .venv/bin/python manage.py makemessages -l de --no-location --ignore '.venv/*' --ignore 'var/*' --ignore 'tests/*'
	DEBUG=1 .venv/bin/python manage.py compilemessages -l de --ignore '.venv/*'

clean:
	rm -rf var/pg var/redis var/staticfiles
