# Safeguard: `make demo` and `make test` are the two commands a fresh machine needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install sysdeps benchdeps test lint demo bench clean

# Tools the disk-image tests build images with (cryptsetup: a LUKS header on a plain file),
# and poppler's pdftoppm/pdftotext that the report tests open PDFs with (root installs them
# with apt-get).
SYSTOOLS := mke2fs debugfs mkfs.vfat mcopy sfdisk mkntfs ntfscp pdftoppm pdftotext qemu-img cryptsetup
sysdeps:
	@missing=; for t in $(SYSTOOLS); do PATH="$$PATH:/sbin:/usr/sbin" command -v $$t >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  sudo=; [ "$$(id -u)" = 0 ] || sudo="sudo -n"; \
	  echo "installing e2fsprogs dosfstools mtools fdisk ntfs-3g poppler-utils qemu-utils cryptsetup-bin with apt-get"; \
	  { $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install \
	    -y -qq e2fsprogs dosfstools mtools fdisk ntfs-3g poppler-utils qemu-utils cryptsetup-bin >/dev/null; } || \
	  echo "could not install them: the disk-image tests that need them are skipped"; fi
	@# the review app's end-to-end tests drive the system Chromium through Playwright
	@if [ ! -x /usr/bin/chromium ]; then \
	  sudo=; [ "$$(id -u)" = 0 ] || sudo="sudo -n"; \
	  echo "installing chromium with apt-get (for the review app's browser tests)"; \
	  { $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install \
	    -y -qq chromium >/dev/null; } || \
	  echo "could not install chromium: the browser tests are skipped"; fi
	@# libarchive-c binds the system libarchive (RAR, CAB, CPIO, LZH, ISO 9660 inside evidence)
	@if ! /sbin/ldconfig -p 2>/dev/null | grep -q 'libarchive\.so\.13'; then \
	  sudo=; [ "$$(id -u)" = 0 ] || sudo="sudo -n"; \
	  echo "installing libarchive13 with apt-get (RAR, CAB, CPIO, LZH and ISO 9660 reading)"; \
	  { $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install \
	    -y -qq libarchive13 >/dev/null 2>&1 || DEBIAN_FRONTEND=noninteractive $$sudo apt-get \
	    install -y -qq libarchive13t64 >/dev/null; } || \
	  echo "could not install libarchive13: RAR, CAB, CPIO, LZH and ISO members are not read"; fi
	@# the PostgreSQL tests start a throwaway server of their own (initdb + pg_ctl)
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then \
	  sudo=; [ "$$(id -u)" = 0 ] || sudo="sudo -n"; \
	  echo "installing postgresql with apt-get (for the PostgreSQL store tests)"; \
	  { $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install \
	    -y -qq postgresql >/dev/null; } || \
	  echo "could not install postgresql: the PostgreSQL tests are skipped (fail in CI)"; fi

install: $(STAMP)

# Re-installs only when pyproject.toml changes; quick when nothing changed.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "python3 -m venv failed: installing python3-venv with apt-get"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@# the reference dwtDct encoder, for one cross-check test only; --no-deps keeps PyTorch
	@# (which its rivaGan module imports) out: the test loads its maxDct module on its own
	$(BIN)/python -m pip install -q --no-deps 'invisible-watermark==0.2.0'
	@touch $@

# ruff on everything; mypy on src/ (settings in pyproject.toml: untyped defs, missing returns,
# wrong item-record fields fail)
lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

test: install sysdeps lint
	$(BIN)/python -m pytest -q

demo: install
	$(BIN)/python -m safeguard.demo .demo

# benchmarks/video.py compares with the vpdq package, the reference's bindings, which pip
# builds from source against the system's FFmpeg (development files, pkg-config, CMake, g++)
benchdeps:
	@if ! pkg-config --exists libavcodec libavformat libavdevice libavfilter libswscale \
	    libswresample libavutil 2>/dev/null || ! command -v cmake >/dev/null; then \
	  sudo=; [ "$$(id -u)" = 0 ] || sudo="sudo -n"; \
	  echo "installing FFmpeg's development files, pkg-config, cmake, g++ with apt-get (to build vpdq)"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq \
	    --no-install-recommends libavcodec-dev libavformat-dev libavdevice-dev libavfilter-dev \
	    libswscale-dev libswresample-dev libavutil-dev pkg-config cmake g++ >/dev/null; fi
	@# benchmarks/carving.py compares with PhotoRec (Debian's testdisk)
	@if ! command -v photorec >/dev/null; then \
	  sudo=; [ "$$(id -u)" = 0 ] || sudo="sudo -n"; \
	  echo "installing testdisk (PhotoRec) with apt-get (for benchmarks/carving.py)"; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq \
	    --no-install-recommends testdisk >/dev/null; fi

bench: install benchdeps
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python benchmarks/scan.py
	$(BIN)/python benchmarks/matching.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/report.py
	$(BIN)/python benchmarks/video.py
	$(BIN)/python benchmarks/carving.py
	$(BIN)/python benchmarks/quality.py

clean:
	rm -rf $(VENV) .demo .pytest_cache build src/*.egg-info
