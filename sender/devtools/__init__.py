"""What runs the product on one machine with nothing else installed: `campaign demo`, the
local SendGrid-compatible server, throwaway PostgreSQL and Redis, the messy CRM export
generator and a threaded web server. Shipped, because the demo is the product's main job."""
