"""The hall server's routes, one `APIRouter` module per concept; `queue/api.py` wires them."""
