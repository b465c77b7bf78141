"""Reading files the product is handed (traces, members, catalogues, voice eval sets, config)
without trusting them. Every package may import this one; it imports none of them."""
