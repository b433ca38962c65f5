#!/usr/bin/env bash
# Installs promtool (Debian's prometheus package ships it) if it is missing,
# then checks the relay's Prometheus alerting rules. Idempotent.
#
#   scripts/promtool.sh install   # install promtool only
#   scripts/promtool.sh check     # install if needed, then check contrib/prometheus
#
# Without root or apt, a missing promtool is reported; under CI=true it fails
# the run.
set -euo pipefail
cd "$(dirname "$0")/.."

install() {
	command -v promtool >/dev/null 2>&1 && return 0
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1 ||
			{ apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends prometheus >/dev/null; }
	fi
	command -v promtool >/dev/null 2>&1
}

case "${1:-check}" in
install)
	install
	;;
check)
	if ! install; then
		if [ "${CI:-}" = true ]; then
			echo "promtool is missing and could not be installed" >&2
			exit 1
		fi
		echo "promtool is missing (apt-get install prometheus); contrib/prometheus not checked" >&2
		exit 0
	fi
	promtool check rules contrib/prometheus/*.rules.yml
	promtool test rules contrib/prometheus/*.test.yml
	;;
*)
	echo "usage: $0 install|check" >&2
	exit 2
	;;
esac
