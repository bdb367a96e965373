# syntax=docker/dockerfile:1
#
# Asterisk 22 for ari-etiquette: the repo's Asterisk configs and dialplan, plus the etiquette
# prompts rendered from the catalog with the company's name in them.
#
# Build from the repo root (docker/compose.yaml does this for you):
#   docker build -f docker/asterisk.Dockerfile --build-arg COMPANY="Acme Ltd" -t ari-etiquette-asterisk .
# Run: ARI_PASSWORD is required (there are no default credentials), ARI_USER defaults to "etiquette":
#   docker run --network host -e ARI_PASSWORD="$(openssl rand -hex 24)" ari-etiquette-asterisk
#
# What admins mount (read-only is fine):
#   /etc/asterisk/pjsip_secrets.conf   the desk phones' auth sections (operator1-auth, ...), see
#                                      config/asterisk/pjsip.conf; without it no phone can register.
#   /etc/asterisk/pjsip_local.conf     your trunks and extra endpoints (optional).
#   /etc/asterisk/extensions_local.conf  your own dialplan contexts (optional).
#   /usr/share/asterisk/etiquette-prompts/<lang>/etiquette/<name>.wav
#                                      a studio recording in place of one rendered prompt
#                                      (8 kHz mono 16-bit WAV, same file name); or mount a whole
#                                      /usr/share/asterisk/etiquette-prompts/<lang>/etiquette folder.
#   /var/spool/asterisk/recording      call recordings (a volume, so they outlive the container).
# Environment at start: ARI_USER, ARI_PASSWORD (or ARI_PASSWORD_FILE, e.g. a Docker secret), and
# optionally ASTERISK_HTTP_BINDADDR (ARI listens on 127.0.0.1 as shipped; set e.g. 0.0.0.0 only when
# the app reaches Asterisk over a private network, never on a public interface without TLS), and for
# a second node on one host ASTERISK_HTTP_PORT, ASTERISK_SIP_PORT, ASTERISK_RTP_START/_END,
# ASTERISK_ENTITY_ID, ASTERISK_SYSTEM_NAME (docker/asterisk-entrypoint.sh; EXPOSE below is node a's).

# Debian suite of the Asterisk stage. Only sid and testing have Asterisk 22 (bookworm and trixie have
# no asterisk package at all). If sid's asterisk is broken or missing on the day you build, fall back
# to testing: --build-arg ASTERISK_SUITE=testing (it moves more slowly, but can drop a package too).
ARG ASTERISK_SUITE=sid

# ---- stage 1: render the prompts (Festival voices from bookworm) ----------------------------------
FROM debian:bookworm-slim AS prompts

# Spoken in the greeting; keep it the same as `company` in the policy file.
ARG COMPANY="Example Corp"
# Optional: the name as the Russian voice should say it (passed as company.ru); empty = COMPANY.
ARG COMPANY_RU=""

ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      festival festvox-us-slt-hts festvox-ru sox \
      python3 python3-pip python3-venv asterisk-moh-opsound-wav \
 && rm -rf /var/lib/apt/lists/*

# The policy whose transfer directory names are spoken ("directory-<id>" prompts); rebuild after
# changing the directory, or drop studio recordings under those names.
ARG POLICY_FILE=config/policy.example.toml
COPY pyproject.toml /src/pyproject.toml
COPY ari_app/ /src/ari_app/
COPY ${POLICY_FILE} /src/policy.toml
RUN python3 -m venv /opt/render \
 && /opt/render/bin/pip install --no-cache-dir /src

# Writes /prompts/<lang>/etiquette/<name>.wav (8 kHz mono) for every catalog language; fails the
# build if a voice is missing instead of shipping silence.
RUN set -eu; \
    set -- --value "company=${COMPANY}" --policy /src/policy.toml; \
    if [ -n "${COMPANY_RU}" ]; then set -- "$@" --value "company.ru=${COMPANY_RU}"; fi; \
    /opt/render/bin/python -m ari_app.prompts.render /prompts "$@"; \
    ls /prompts/*/etiquette/*.wav > /dev/null

# Music on hold without its quiet ends (up to 1 s at a track's start, 11 s at its end: dead air
# each time music begins and between tracks); bookworm's opsound is the same 2.03 as sid's.
RUN /opt/render/bin/python -m ari_app.prompts.music /usr/share/asterisk/moh

# ---- stage 2: Asterisk 22 -------------------------------------------------------------------------
FROM debian:${ASTERISK_SUITE}-slim
ARG ASTERISK_SUITE
LABEL org.opencontainers.image.title="ari-etiquette-asterisk" \
      org.opencontainers.image.description="Asterisk 22 (Debian ${ASTERISK_SUITE}) configured for ari-etiquette"

ENV DEBIAN_FRONTEND=noninteractive
# The same packages as the test sandbox (ari_app/sandbox/rootfs.py PACKAGES); a unit test keeps them equal.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      asterisk asterisk-modules asterisk-core-sounds-en asterisk-core-sounds-ru asterisk-moh-opsound-wav \
 && rm -rf /var/lib/apt/lists/* \
 && asterisk -V

# Only Debian's asterisk.conf (the directory layout) stays in /etc/asterisk; its other samples move
# to /usr/share/asterisk/etc-samples, so only the files we ship configure anything (as in the test
# sandbox). modules.conf has autoload=no and lists every module the app needs.
RUN mkdir -p /usr/share/asterisk/etc-samples \
 && find /etc/asterisk -mindepth 1 -maxdepth 1 ! -name asterisk.conf \
      -exec mv -t /usr/share/asterisk/etc-samples/ {} +
COPY config/asterisk/*.conf dialplan/*.conf /etc/asterisk/
RUN printf '%s\n' \
      '; Written by docker/asterisk.Dockerfile.' \
      '[general]' 'static = yes' 'writeprotect = yes' '' \
      '#include extensions_etiquette.conf' \
      '; Your own contexts (trunks, other services): mount /etc/asterisk/extensions_local.conf' \
      '#tryinclude extensions_local.conf' \
      > /etc/asterisk/extensions.conf

# Prompts live in one folder; each language's real sound folder gets an `etiquette` link to it.
# Debian's sounds/<lang> are alternatives symlinks (sounds/en -> /etc/alternatives/... ->
# sounds/en_US_f_Allison): resolve them with readlink -f so the link lands in the real folder.
COPY --from=prompts /prompts/ /usr/share/asterisk/etiquette-prompts/
COPY --from=prompts /usr/share/asterisk/moh/ /usr/share/asterisk/moh/
RUN set -eu; \
    for dir in /usr/share/asterisk/etiquette-prompts/*/etiquette; do \
      lang="$(basename "$(dirname "$dir")")"; \
      real="$(readlink -f "/usr/share/asterisk/sounds/$lang")"; \
      mkdir -p "$real"; \
      ln -sfn "$dir" "$real/etiquette"; \
      ls "/usr/share/asterisk/sounds/$lang/etiquette/"*.wav > /dev/null; \
    done

# ARI recording answers 500 unless spool/recording exists; Debian's package does not create it.
# /var/run/asterisk is normally made by systemd-tmpfiles, which does not run in a container.
RUN mkdir -p /var/spool/asterisk/recording /var/run/asterisk

COPY docker/asterisk-entrypoint.sh /usr/local/bin/asterisk-entrypoint
RUN chmod 0755 /usr/local/bin/asterisk-entrypoint

# ARI/HTTP, SIP, RTP (rtp.conf: 10000-10999).
EXPOSE 8088/tcp 5060/udp 10000-10999/udp

HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["asterisk", "-rx", "core waitfullybooted"]

ENTRYPOINT ["/usr/local/bin/asterisk-entrypoint"]
# No -U/-G: with -U (even -U root) Asterisk drops its capabilities and then cannot read its own
# 0640 config files. It runs as the container's root, isolated by the container.
CMD ["asterisk", "-f", "-n"]
