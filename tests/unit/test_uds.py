"""UDS (ISO 14229) requests and responses: bytes checked against the standard's layout."""

import pytest

from autocloud.domain import uds
from autocloud.domain.diag_session import DiagAnswer, DiagRequestRow, build
from autocloud.domain.errors import InvalidInput

VIN = "WVWZZZ1JZXW000001"


def request(name: str) -> bytes:
    return uds.READS[name].request()


def test_read_dtc_information_is_sid_subfunction_status_mask() -> None:
    # 0x19 ReadDTCInformation, sub-function 0x02 reportDTCByStatusMask, mask testFailed|confirmed
    assert request("dtcs") == bytes([0x19, 0x02, 0x09])


def test_read_data_by_identifier_carries_big_endian_dids() -> None:
    assert request("vin") == bytes([0x22, 0xF1, 0x90])
    assert request("software") == bytes([0x22, 0xF1, 0x89, 0xF1, 0x95])
    assert request("odometer") == bytes([0x22, 0xF4, 0xA6])


def test_clear_diagnostic_information_is_three_byte_group_all() -> None:
    assert request("clear_dtcs") == bytes([0x14, 0xFF, 0xFF, 0xFF])


@pytest.mark.parametrize(
    ("code", "number"),
    [
        ("P0301", 0x030100),  # P=00, digit 0, 301
        ("P0A7F", 0x0A7F00),
        ("C0035", 0x403500),  # C=01
        ("B1234", 0x923400),  # B=10, digit 1
        ("U0100", 0xC10000),  # U=11
    ],
)
def test_dtc_numbers_follow_sae_j2012(code: str, number: int) -> None:
    assert uds.dtc_number(code) == number
    assert uds.dtc_code(number) == code


@pytest.mark.parametrize("bad", ["X0301", "P4301", "P03", "P030G"])
def test_malformed_codes_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        uds.dtc_number(bad)


def test_positive_vin_answer_decodes() -> None:
    answer = bytes([0x62, 0xF1, 0x90]) + VIN.encode()
    assert uds.decode("vin", answer) == {"status": "positive", "vin": VIN}


def test_software_versions_trim_padding() -> None:
    answer = bytes([0x62, 0xF1, 0x89]) + b"EC 0412.03  " + bytes([0xF1, 0x95]) + b"BSH MED17.5\x00"
    assert uds.decode("software", answer) == {
        "status": "positive",
        "software_version": "EC 0412.03",
        "supplier_software_version": "BSH MED17.5",
    }


def test_odometer_is_tenths_of_a_kilometre() -> None:
    answer = bytes([0x62, 0xF4, 0xA6]) + (1234567).to_bytes(4, "big")
    assert uds.decode("odometer", answer) == {"status": "positive", "odometer_km": 123456.7}


def test_dtc_records_decode_with_status_flags() -> None:
    # 0x59 0x02, availability 0xFF, then DTC P0301 (03 01 00) status 0xAF, P0562 status 0x08
    answer = bytes([0x59, 0x02, 0xFF, 0x03, 0x01, 0x00, 0xAF, 0x05, 0x62, 0x00, 0x08])
    decoded = uds.decode("dtcs", answer)
    assert decoded["status"] == "positive"
    assert decoded["status_availability"] == 0xFF
    first, second = decoded["dtcs"]
    assert (first["code"], first["status"], first["active"]) == ("P0301", 0xAF, True)
    assert "warning_indicator_requested" in first["flags"]
    assert (second["code"], second["active"], second["flags"]) == ("P0562", False, ["confirmed"])


def test_negative_responses_carry_the_nrc_name() -> None:
    assert uds.decode("odometer", bytes([0x7F, 0x22, 0x31])) == {
        "status": "negative",
        "nrc": 0x31,
        "nrc_name": "RequestOutOfRange",
    }
    assert uds.decode("clear_dtcs", bytes([0x7F, 0x14, 0x22]))["nrc_name"] == (
        "ConditionsNotCorrect"
    )
    assert uds.decode("dtcs", bytes([0x7F, 0x19, 0x11]))["nrc_name"] == "ServiceNotSupported"


@pytest.mark.parametrize(
    ("read", "answer", "why"),
    [
        ("vin", b"", "empty"),
        ("vin", bytes([0x59, 0x02, 0xFF]), "ReadDTCInformation"),  # another service's answer
        ("vin", bytes([0x62, 0xF1, 0x90]) + b"WVW", "incomplete"),  # truncated VIN
        ("vin", bytes([0x62, 0x12, 0x34, 0x00]), "0x1234"),  # a DID nobody asked for
        ("dtcs", bytes([0x59, 0x02, 0xFF, 0x03, 0x01]), "incomplete"),
        ("vin", bytes([0x01, 0x02]), "known service"),
    ],
)
def test_answers_that_are_not_valid_uds_are_invalid_not_errors(
    read: str, answer: bytes, why: str
) -> None:
    decoded = uds.decode(read, answer)
    assert decoded["status"] == "invalid"
    assert why.lower() in decoded["error"].lower()


def test_response_pending_is_not_final() -> None:
    assert not uds.is_final(bytes([0x7F, 0x22, 0x78]))
    assert uds.is_final(bytes([0x7F, 0x22, 0x31]))
    assert uds.is_final(bytes([0x62, 0xF1, 0x90]))


def test_names_are_checked() -> None:
    assert uds.ecu("bms").address == 0x7E4
    with pytest.raises(InvalidInput, match="known ECUs"):
        uds.ecu("XYZ")
    with pytest.raises(InvalidInput, match="clearing is a separate flag"):
        uds.read("clear_dtcs")
    assert uds.default_ecus("ELECTRIC") == ["ABS", "BMS", "BCM"]
    assert uds.default_ecus("COMBUSTION") == ["ECM", "TCM", "ABS", "BCM"]
    assert uds.default_ecus(None) == list(uds.ECUS)


def test_request_message_round_trips_and_refuses_garbage() -> None:
    message = uds.DiagRequest(
        id="ds1.0", ecu="ECM", addr=0x7E0, request="22f190", issued=1, expires=2
    )
    assert uds.decode_request(uds.encode_request(message)) == message
    for bad in (
        b"{",
        b'{"id": "x"}',
        b'{"id":"a b","ecu":"E","addr":1,"request":"z","issued":1,"expires":2}',
    ):
        with pytest.raises(ValueError, match="diag/request"):
            uds.decode_request(bad)


def _row(i: int, ecu: str, read: str) -> DiagRequestRow:
    return DiagRequestRow(f"s.{i}", i, ecu, read, uds.READS[read].request().hex())


def _answer(i: int, ecu: str, data: bytes, at: int = 1) -> DiagAnswer:
    return DiagAnswer(f"s.{i}", ecu, data.hex(), at, at)


def test_report_takes_final_answers_and_marks_silence() -> None:
    rows = [_row(0, "ECM", "vin"), _row(1, "ECM", "dtcs"), _row(2, "TCM", "vin")]
    answers = [
        _answer(0, "ECM", bytes([0x7F, 0x22, 0x78])),  # pending, then the real answer
        _answer(0, "ECM", bytes([0x62, 0xF1, 0x90]) + VIN.encode(), at=2),
        _answer(1, "ECM", bytes([0x59, 0x02, 0xFF, 0x03, 0x01, 0x00, 0x2F])),
        _answer(9, "ECM", bytes([0x62])),  # an answer to nothing: ignored by the report
    ]
    report = build(VIN, rows, answers)
    assert report["complete"] is False
    ecm, tcm = report["ecus"]
    assert (ecm["ecu"], ecm["address"]) == ("ECM", "0x7E0")
    assert [r["status"] for r in ecm["results"]] == ["positive", "positive"]
    assert ecm["results"][0]["received_ms"] == 2
    assert tcm["results"] == [{"read": "vin", "request": "22f190", "status": "no_response"}]
    assert report["summary"] == {
        "requests": 3,
        "positive": 2,
        "negative": 0,
        "invalid": 0,
        "no_response": 1,
        "active_dtcs": ["P0301"],
        "vin_matches": True,
    }


def test_report_flags_an_answer_from_the_wrong_ecu_and_a_foreign_vin() -> None:
    rows = [_row(0, "ECM", "vin")]
    report = build(VIN, rows, [_answer(0, "BCM", bytes([0x62, 0xF1, 0x90]) + VIN.encode())])
    assert report["ecus"][0]["results"][0]["status"] == "invalid"
    other = "WVWZZZ1JZXW000009"
    report = build(VIN, rows, [_answer(0, "ECM", bytes([0x62, 0xF1, 0x90]) + other.encode())])
    assert report["complete"] is True
    assert report["summary"]["vin_matches"] is False
