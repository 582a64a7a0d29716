-- wrk script for benches/e2e/run.sh: POST the WooCommerce order as JSON.
--
--   wrk ... -s post.lua <connect URL> -- <body file> <request target> [api key]
--
-- <connect URL> is where wrk connects (the proxy, or the upstream directly).
-- <request target> is what goes on the request line: the absolute form
-- "http://api.shipper.example/v1/shipments" for a forward proxy (what PHP's
-- cURL sends through CURLOPT_PROXY), or "/v1/shipments" straight to the
-- upstream. [api key] is sent as X-API-KEY (direct runs only: there no proxy
-- injects it, and the upstream should see the same request either way).

function init(args)
   local body_file, target, key = args[1], args[2], args[3]
   local f = assert(io.open(body_file, "rb"))
   wrk.body = f:read("*a")
   f:close()
   wrk.method = "POST"
   wrk.path = target
   -- wrk would otherwise send Host: <connect address>, which a proxy (rightly)
   -- refuses when it disagrees with the absolute URI.
   wrk.headers["Host"] = "api.shipper.example"
   wrk.headers["Content-Type"] = "application/json"
   if key ~= nil and key ~= "" then
      wrk.headers["X-API-KEY"] = key
   end
end
