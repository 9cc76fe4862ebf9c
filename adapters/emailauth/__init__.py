"""E-mail authentication analysis of a domain: SPF, DKIM, DMARC, MX, MTA-STS, TLS-RPT, BIMI and DNSSEC."""
