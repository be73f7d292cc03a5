"""Bodies of the dashboard's own API route (the fleet pulse)."""

from pydantic import BaseModel, Field


class PulsePointOut(BaseModel):
    ts: int = Field(description="When the sample was taken (epoch ms).")
    vehicles: int = Field(description="Vehicles registered.")
    online: int = Field(description="Vehicles connected.")
    messages_per_s: float = Field(
        description="Accepted vehicle messages per second since the last sample."
    )


class PulseOut(BaseModel):
    interval_ms: int
    since_ms: int = Field(description="Start of the series: the platform keeps it in memory.")
    samples: list[PulsePointOut]
