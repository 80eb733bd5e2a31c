# No outputs: nothing reads the web ACL; the stack counts its instances (enable_waf).
