"""The systemd unit and the nginx configuration in deploy/ are valid for the tools that read them.

Each test runs the tool's own checker where the tool is installed (``systemd-analyze verify``,
``nginx -t`` with a temporary prefix) and skips, saying why, where it is not. Paths that only
exist on a server (the virtualenv under /opt, the certificates) are pointed at temporary stand-ins.
"""

from __future__ import annotations

import datetime
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

DEPLOY = REPO / "deploy"


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze not installed: cannot check deploy/community-bot.service")
    text = (DEPLOY / "community-bot.service").read_text(encoding="utf-8")
    assert "/opt/community-bot/.venv/bin/python -m bot serve" in text and "--workers" in text
    unit = tmp_path / "community-bot.service"
    unit.write_text(
        text.replace("/opt/community-bot/.venv/bin/python", str(Path(sys.executable).resolve())).replace(
            "WorkingDirectory=/opt/community-bot", f"WorkingDirectory={tmp_path}"
        ),
        encoding="utf-8",
    )
    done = subprocess.run([tool, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60)
    problems = [line for line in (done.stdout + done.stderr).splitlines() if str(unit) in line or "Unit" in line]
    assert done.returncode == 0 and not problems, done.stdout + done.stderr


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bot.example.org")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "fullchain.pem", directory / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def test_nginx_config_passes_nginx_t(tmp_path: Path) -> None:
    tool = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if tool is None:
        pytest.skip("nginx not installed: cannot check deploy/nginx.conf (apt-get install nginx-light)")
    cert, key = _self_signed(tmp_path)
    site = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    site = site.replace("/etc/ssl/community-bot/fullchain.pem", str(cert)).replace(
        "/etc/ssl/community-bot/privkey.pem", str(key)
    )
    (tmp_path / "site.conf").write_text(site, encoding="utf-8")
    temp = tmp_path / "temp"
    temp.mkdir()
    main = f"""
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{}}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {tmp_path}/site.conf;
}}
"""
    (tmp_path / "nginx.conf").write_text(main, encoding="utf-8")
    done = subprocess.run(
        [tool, "-t", "-q", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "emerg" not in done.stderr, done.stderr
