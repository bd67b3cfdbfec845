# The compiled twin of proxy.wire.scanner (see _cscan.pyx); the same interface.
from proxy.wire.scanner import ResponseScanner as ResponseScanner
from proxy.wire.scanner import take_packet as take_packet
