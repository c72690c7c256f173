"""The base of every request body the API takes: a field it does not know is refused with
422 naming it, never dropped in silence (a camera registered with a misspelt `privacy_mask`
would otherwise film homes unmasked while its owner believes otherwise). Alerts are the one
exception, by their wire format: their unknown fields are kept, in `extra`."""

from pydantic import BaseModel, ConfigDict


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")
