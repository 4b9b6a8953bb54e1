"""A Llama GGUF model in PyTorch, as the engine runs it, with DIP / DIP-CA masks on the MLP and
low-rank adapters (LoRA) on gate, up and down whose input is masked like their base layer's.

The GGUF reader covers what the training tool needs (F32, F16, BF16, Q8_0 tensors); Debian ships
no Python GGUF package. q/k rows stay in GGUF's interleaved order, so RoPE rotates adjacent pairs
(llama.cpp's normal mode), as the engine does.
"""
import json
import math
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

import dipmask

# PyTorch 2's fused attention (Debian 12's PyTorch 1.13 has none: the plain softmax path).
SDPA = hasattr(F, "scaled_dot_product_attention")

GGUF_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


class GgufReader:
    def __init__(self, path):
        self.path = path
        self.buf = memoryview(open(path, "rb").read())
        self.pos = 0
        if bytes(self.buf[:4]) != b"GGUF":
            raise SystemExit(f"{path}: not a GGUF file")
        version, n_tensors, n_kv = struct.unpack_from("<IQQ", self.buf, 4)
        self.pos = 24
        self.meta = {}
        for _ in range(n_kv):
            key = self._str()
            self.meta[key] = self._value(self._u32())
        infos = []
        for _ in range(n_tensors):
            name = self._str()
            nd = self._u32()
            dims = [self._u64() for _ in range(nd)]
            ttype = self._u32()
            off = self._u64()
            infos.append((name, dims, ttype, off))
        align = self.meta.get("general.alignment", 32)
        data = (self.pos + align - 1) // align * align
        self.tensors = {name: (dims, ttype, data + off) for name, dims, ttype, off in infos}

    def _u32(self):
        v = struct.unpack_from("<I", self.buf, self.pos)[0]
        self.pos += 4
        return v

    def _u64(self):
        v = struct.unpack_from("<Q", self.buf, self.pos)[0]
        self.pos += 8
        return v

    def _str(self):
        n = self._u64()
        s = bytes(self.buf[self.pos:self.pos + n]).decode("utf-8", "replace")
        self.pos += n
        return s

    def _value(self, t):
        if t == 8:
            return self._str()
        if t == 9:
            et, n = self._u32(), self._u64()
            return [self._value(et) for _ in range(n)]
        fmt = GGUF_SCALAR[t]
        v = struct.unpack_from(fmt, self.buf, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def tensor(self, name):
        """The tensor as float32, PyTorch order (rows = outputs)."""
        dims, ttype, off = self.tensors[name]
        n = int(np.prod(dims))
        shape = tuple(reversed(dims))
        if ttype == 0:
            a = np.frombuffer(self.buf, np.float32, n, off)
        elif ttype == 1:
            a = np.frombuffer(self.buf, np.float16, n, off).astype(np.float32)
        elif ttype == 30:
            a = (np.frombuffer(self.buf, np.uint16, n, off).astype(np.uint32) << 16).view(np.float32)
        elif ttype == 8:  # Q8_0: blocks of an fp16 scale and 32 int8
            blk = np.frombuffer(self.buf, np.dtype([("d", "<f2"), ("q", "i1", 32)]), n // 32, off)
            a = (blk["d"].astype(np.float32)[:, None] * blk["q"].astype(np.float32)).reshape(-1)
        else:
            raise SystemExit(f"{self.path}: tensor {name} has type {ttype}; convert the model to f16 first")
        return torch.from_numpy(a.reshape(shape).copy())


class MaskSpec:
    """Which MLP masks a forward pass applies: method dense / dip / dip-ca at an MLP density, with
    DIP-CA's gamma and modelled cache (fraction of each matrix's columns)."""

    def __init__(self, method="dense", density=1.0, gamma=0.5, cache=0.5, block_up=1, block_down=1):
        self.method, self.density, self.gamma, self.cache = method, density, gamma, cache
        self.block_up, self.block_down = block_up, block_down  # the engine's --mask-block UP,DOWN

    def keeps(self, n_embd, n_ff):
        up, down = dipmask.dip_optimized_split(self.density)
        return dipmask.keep_count(up, n_embd), dipmask.keep_count(down, n_ff)


class Lora(torch.nn.Module):
    """PEFT's initialisation: A Kaiming-uniform, B zero (the adapter starts as the identity)."""

    def __init__(self, n_in, n_out, rank):
        super().__init__()
        self.A = torch.nn.Parameter(torch.empty(rank, n_in))
        self.B = torch.nn.Parameter(torch.zeros(n_out, rank))
        torch.nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))


class GgufLlama(torch.nn.Module):
    MLP = ("ffn_gate", "ffn_up", "ffn_down")
    HF = {"ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj"}

    def __init__(self, path, rank=0, alpha=None):
        super().__init__()
        r = GgufReader(path)
        arch = r.meta["general.architecture"]
        if arch != "llama":
            raise SystemExit(f"{path}: architecture {arch}; the training tool runs llama models")
        g = lambda k: r.meta[f"llama.{k}"]
        self.n_layer, self.n_embd, self.n_ff = g("block_count"), g("embedding_length"), g("feed_forward_length")
        self.n_head, self.n_head_kv = g("attention.head_count"), g("attention.head_count_kv")
        self.eps = r.meta.get("llama.attention.layer_norm_rms_epsilon", 1e-5)
        self.rope_base = r.meta.get("llama.rope.freq_base", 10000.0)
        self.head_dim = self.n_embd // self.n_head
        w = {}
        for name in r.tensors:
            w[name.replace(".", "_")] = r.tensor(name)
        self.w = w  # frozen: plain tensors, not parameters
        self.tied = "output_weight" not in w
        self.rank, self.alpha = rank, (alpha if alpha is not None else rank)
        self.lora = torch.nn.ModuleDict()
        if rank:
            for l in range(self.n_layer):
                for t in self.MLP:
                    W = w[f"blk_{l}_{t}_weight"]
                    self.lora[f"{l}_{t}"] = Lora(W.shape[1], W.shape[0], rank)
        inv = self.rope_base ** (-torch.arange(0, self.head_dim, 2, dtype=torch.float64) / self.head_dim)
        self.inv_freq = inv

    def rms(self, x, wname):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.w[wname]

    def rope(self, x, pos):  # x: (B, T, H, D), adjacent pairs rotated
        ang = (pos[:, None].double() * self.inv_freq[None, :]).float()
        cos, sin = ang.cos()[None, :, None, :], ang.sin()[None, :, None, :]
        x0, x1 = x[..., 0::2], x[..., 1::2]
        return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)

    def proj(self, x, l, t, use_lora):
        y = x @ self.w[f"blk_{l}_{t}_weight"].T
        if use_lora and self.rank:
            a = self.lora[f"{l}_{t}"]
            y = y + (self.alpha / self.rank) * ((x @ a.A.T) @ a.B.T)
        return y

    def masks(self, scores, k, spec, cache_aware, block=1):
        """One layer's masks of (B, T, n) scores: top-k per token (in groups of `block` columns), or
        DIP-CA's against a fresh modelled cache of spec.cache of the n columns."""
        if not cache_aware:
            return dipmask.sequential_masks(scores, k, block=block)
        B, _, n = scores.shape
        cache = dipmask.LruCache(B, n, int(math.floor(spec.cache * n)), scores.device)
        return dipmask.sequential_masks(scores, k, cache, spec.gamma, block)

    def head(self, x):
        """Logits of final hidden states (the output projection)."""
        return x @ (self.w["token_embd_weight"] if self.tied else self.w["output_weight"]).T

    def forward(self, tokens, spec=None, use_lora=True, record=None, logits=True):
        """Logits of (B, T) tokens (logits=False: the normed final hidden states, for head()).
        spec: the MLP masks (None: dense). record: a list that gets each layer's (up mask, down
        mask) when given."""
        B, T = tokens.shape
        w = self.w
        x = w["token_embd_weight"][tokens]
        pos = torch.arange(T, device=tokens.device)
        causal = torch.ones(T, T, dtype=torch.bool, device=tokens.device).tril()
        H, Hk, D = self.n_head, self.n_head_kv, self.head_dim
        masked = spec is not None and spec.method != "dense"
        if masked:
            k_up, k_down = spec.keeps(self.n_embd, self.n_ff)
        for l in range(self.n_layer):
            h = self.rms(x, f"blk_{l}_attn_norm_weight")
            q = self.rope((h @ w[f"blk_{l}_attn_q_weight"].T).view(B, T, H, D), pos)
            k = self.rope((h @ w[f"blk_{l}_attn_k_weight"].T).view(B, T, Hk, D), pos)
            v = (h @ w[f"blk_{l}_attn_v_weight"].T).view(B, T, Hk, D)
            k = k.repeat_interleave(H // Hk, dim=2)
            v = v.repeat_interleave(H // Hk, dim=2)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, H, T, D)
            if SDPA:  # PyTorch 2: no (B, H, T, T) scores kept for the backward pass
                att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            else:
                s = (q @ k.transpose(-1, -2)) / math.sqrt(D)
                att = torch.softmax(s.masked_fill(~causal, float("-inf")), dim=-1) @ v
            x = x + att.transpose(1, 2).reshape(B, T, H * D) @ w[f"blk_{l}_attn_output_weight"].T
            h = self.rms(x, f"blk_{l}_ffn_norm_weight")
            if masked:
                ca = spec.method == "dip-ca"
                m_up = self.masks(h.detach().abs(), k_up, spec, ca, spec.block_up)
                h = h * m_up
            a = F.silu(self.proj(h, l, "ffn_gate", use_lora)) * self.proj(h, l, "ffn_up", use_lora)
            if masked:
                m_down = self.masks(a.detach().abs(), k_down, spec, ca, spec.block_down)
                a = a * m_down
                if record is not None:
                    record.append((m_up, m_down))
            x = x + self.proj(a, l, "ffn_down", use_lora)
        x = self.rms(x, "output_norm_weight")
        return self.head(x) if logits else x

    def save_peft(self, folder, base_name, extra=None):
        """The adapters as a PEFT folder: adapter_config.json + adapter_model.safetensors (F32),
        Hugging Face module names (the engine maps them to GGUF names)."""
        os.makedirs(folder, exist_ok=True)
        tensors = {}
        for key, a in self.lora.items():
            l, t = key.split("_", 1)
            mod = f"base_model.model.model.layers.{l}.{self.HF[t]}"
            tensors[f"{mod}.lora_A.weight"] = a.A.detach().float().contiguous()
            tensors[f"{mod}.lora_B.weight"] = a.B.detach().float().contiguous()
        write_safetensors(os.path.join(folder, "adapter_model.safetensors"), tensors)
        cfg = {"peft_type": "LORA", "r": self.rank, "lora_alpha": self.alpha, "lora_dropout": 0.0,
               "target_modules": ["gate_proj", "up_proj", "down_proj"], "bias": "none",
               "fan_in_fan_out": False, "base_model_name_or_path": base_name, "task_type": "CAUSAL_LM"}
        if extra:
            cfg["dip"] = extra
        with open(os.path.join(folder, "adapter_config.json"), "w") as f:
            json.dump(cfg, f, indent=1)

    def load_peft(self, folder):
        """Starts from a PEFT folder written by save_peft (continued training); the rank must match.
        A missing, truncated or mismatched adapter is a one-line error naming the file."""
        path = os.path.join(folder, "adapter_model.safetensors")
        tensors = read_safetensors(path)
        for key, a in self.lora.items():
            l, t = key.split("_", 1)
            mod = f"base_model.model.model.layers.{l}.{self.HF[t]}"
            for part, p in (("lora_A", a.A), ("lora_B", a.B)):
                name = f"{mod}.{part}.weight"
                if name not in tensors:
                    raise SystemExit(f"{path}: tensor {name} is missing")
                src = tensors[name]
                if src.shape != p.shape:
                    raise SystemExit(f"{path}: {name} has shape {tuple(src.shape)}, expected {tuple(p.shape)} "
                                     f"(rank {self.rank})")
                with torch.no_grad():
                    p.copy_(src)


def read_safetensors(path):
    """F32 tensors of a safetensors file, by name; anything else is a one-line error naming it."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise SystemExit(f"{path}: cannot read: {e.strerror}")
    n = struct.unpack("<Q", raw[:8])[0] if len(raw) >= 8 else 0
    try:
        header = json.loads(raw[8:8 + n])
    except (ValueError, UnicodeDecodeError):
        raise SystemExit(f"{path}: not a safetensors file (no valid header)")
    data = raw[8 + n:]
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        if h["dtype"] != "F32":
            raise SystemExit(f"{path}: {name} is {h['dtype']}, only F32 is read")
        a, b = h["data_offsets"]
        if not 0 <= a <= b <= len(data) or b - a != 4 * math.prod(h["shape"]):
            raise SystemExit(f"{path}: {name} does not fit in the file (truncated?)")
        out[name] = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32).reshape(h["shape"])
    return out


def write_safetensors(path, tensors):
    """safetensors: 8-byte header length, JSON header (dtype, shape, offsets), raw little-endian
    data. Debian 12 packages no Python safetensors; the format is this small."""
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        b = t.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
