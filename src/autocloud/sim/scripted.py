"""Scripted vehicles for the demo: each drives laps of a circle and reports at 1 Hz.

A stand-in until the OpenStreetMap simulator (issue 3) lands: the physics are simple but
the protocol is real — own credential, retained state with a last will, (sid, seq),
QoS 1 telemetry — so the platform is exercised exactly as by a real unit.
"""

import math
import random
import threading
import time
import uuid
from dataclasses import dataclass, field

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ORIGIN = (49.4094, 8.6937)  # Heidelberg, Bismarckplatz
_encode = msgspec.json.encode


@dataclass
class ScriptedVehicle:
    vin: str
    secret: str
    electric: bool
    host: str
    port: int
    seed: int = 0
    bad_every: int = 0  # send an out-of-range value every n-th message (0: never)
    seq: int = 0
    sid: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    odometer_m: float = 0.0
    energy: float = 80.0  # SoC % or fuel %

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self.radius_km = self._rng.uniform(0.5, 3.0)
        self.phase = self._rng.uniform(0, 2 * math.pi)
        self.odometer_m = self._rng.uniform(5_000_000, 80_000_000)
        self.energy = self._rng.uniform(25, 95)
        self.started = time.monotonic()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.vin, protocol=mqtt.MQTTv311
        )
        self.client.username_pw_set(self.vin, self.secret)
        self.client.will_set(self._topic("state"), _encode({"online": False}), qos=1, retain=True)

    def _topic(self, sub: str) -> str:
        return f"vehicles/{self.vin}/{sub}"

    def connect(self) -> None:
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        state = {"online": True, "ts": _now(), "sid": self.sid}
        self.client.publish(self._topic("state"), _encode(state), qos=1, retain=True)

    def disconnect(self) -> None:
        self.client.publish(
            self._topic("state"), _encode({"online": False, "ts": _now()}), qos=1, retain=True
        )
        self.client.disconnect()
        self.client.loop_stop()

    def step(self, dt: float) -> None:
        t = time.monotonic() - self.started
        speed = max(0.0, 45 + 35 * math.sin(t / 40 + self.phase) + self._rng.uniform(-3, 3))
        self.odometer_m += speed / 3.6 * dt
        self.energy = max(5.0, self.energy - speed * dt * (0.00012 if self.electric else 0.00009))
        angle = self.phase + self.odometer_m / 1000 / self.radius_km
        lat = ORIGIN[0] + self.radius_km / 111.0 * math.sin(angle)
        lon = ORIGIN[1] + self.radius_km / (111.0 * math.cos(math.radians(ORIGIN[0]))) * math.cos(
            angle
        )
        signals: dict[str, object] = {
            "Vehicle.Speed": round(speed, 1),
            "Vehicle.IsMoving": speed > 0.5,
            "Vehicle.CurrentLocation.Latitude": round(lat, 6),
            "Vehicle.CurrentLocation.Longitude": round(lon, 6),
            "Vehicle.CurrentLocation.Heading": round(math.degrees(angle + math.pi / 2) % 360, 1),
            "Vehicle.TraveledDistance": int(self.odometer_m),
            "Vehicle.LowVoltageBattery.CurrentVoltage": round(
                14.1 + self._rng.uniform(-0.1, 0.1), 2
            ),
            "Vehicle.Cabin.Door.Row1.DriverSide.IsLocked": True,
            "Vehicle.Chassis.Axle.Row1.Wheel.Left.Tire.Pressure": 250 + self._rng.randint(-3, 3),
        }
        if self.electric:
            signals["Vehicle.Powertrain.TractionBattery.StateOfCharge.Current"] = round(
                self.energy, 2
            )
        else:
            signals["Vehicle.Powertrain.FuelSystem.RelativeLevel"] = int(self.energy)
            signals["Vehicle.Powertrain.CombustionEngine.EngineCoolant.Temperature"] = int(
                min(90, 20 + t)
            )
        self.seq += 1
        if self.bad_every and self.seq % self.bad_every == 0:
            signals["Vehicle.CurrentLocation.Latitude"] = 123.0  # out of range: a dead letter
        message = {"v": 1, "sid": self.sid, "seq": self.seq, "ts": _now(), "signals": signals}
        self.client.publish(self._topic("telemetry"), _encode(message), qos=1)


def _now() -> int:
    return time.time_ns() // 1_000_000


def drive(vehicles: list[ScriptedVehicle], stop: threading.Event, period_s: float = 1.0) -> None:
    """Connect every vehicle and publish one sample each per period until `stop` is set."""
    for vehicle in vehicles:
        vehicle.connect()
    try:
        while not stop.wait(period_s):
            for vehicle in vehicles:
                vehicle.step(period_s)
    finally:
        for vehicle in vehicles:
            vehicle.disconnect()
